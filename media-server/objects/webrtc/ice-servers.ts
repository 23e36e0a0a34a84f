/**
 * KMS's STUN and TURN settings of a WebRtcEndpoint (`stunServerAddress`,
 * `stunServerPort`, `turnUrl`), validated as KMS documents them and turned
 * into werift ICE servers for the endpoint's own gathering.
 *
 * KMS's formats (WebRtcEndpoint.conf.ini and its parser):
 * - `stunServerAddress`: an IP address, never a domain name; port 3478 unless set;
 * - `turnUrl`: `user:password@address:port(?transport=udp|tcp|tls)`, the
 *   address an IPv4 address. The user part is greedy, as KMS's regex is
 *   (`^(?<user>.+):(?<password>.+)@…`): a TURN REST API user name such as
 *   `1700000000:bridge` works, as long as the password has no ':' (base64 never does).
 * An empty string clears a setting (as it does on KMS).
 */
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";

export const DEFAULT_STUN_PORT = 3478;

const TURN_URL =
  /^(?<user>.+):(?<password>.+)@(?<address>[0-9.]+):(?<port>[0-9]+)(\?transport=(?<transport>udp|tcp|tls))?$/;

export interface TurnSettings {
  readonly username: string;
  readonly credential: string;
  readonly address: string;
  readonly port: number;
  readonly transport: "udp" | "tcp" | "tls";
}

/** KMS's turnUrl parsed, or undefined when it is not in KMS's format. */
export function parseTurnUrl(value: string): TurnSettings | undefined {
  const groups = TURN_URL.exec(value)?.groups;
  if (!groups?.user || !groups.password || !groups.address || !groups.port) return undefined;
  const port = Number(groups.port);
  if (!isIPv4(groups.address) || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const transport = groups.transport === "tcp" || groups.transport === "tls" ? groups.transport : "udp";
  return { username: groups.user, credential: groups.password, address: groups.address, port, transport };
}

export const stunServerAddressSchema = z
  .string()
  .max(100)
  .refine(
    (value) => value === "" || isIPv4(value) || isIPv6(value),
    "must be an IP address (KMS takes no domain names), or '' to clear it",
  );

export const stunServerPortSchema = z.number().int().min(1).max(65535);

export const turnUrlSchema = z
  .string()
  .max(2000)
  .refine(
    (value) => value === "" || parseTurnUrl(value) !== undefined,
    "must be 'user:password@<IPv4 address>:<port>' with an optional '?transport=udp|tcp|tls' (KMS's format), or '' to clear it",
  );

export interface IceServerSettings {
  readonly stunServerAddress?: unknown;
  readonly stunServerPort?: unknown;
  readonly turnUrl?: unknown;
}

/** The RTCIceServer list (werift's shape) for an endpoint's settings; empty when none is set. */
export function iceServersOf(
  settings: IceServerSettings,
): Array<{ urls: string; username?: string; credential?: string }> {
  const servers: Array<{ urls: string; username?: string; credential?: string }> = [];
  const address = typeof settings.stunServerAddress === "string" ? settings.stunServerAddress : "";
  if (address !== "") {
    const port = typeof settings.stunServerPort === "number" ? settings.stunServerPort : DEFAULT_STUN_PORT;
    servers.push({ urls: `stun:${isIPv6(address) ? `[${address}]` : address}:${port}` });
  }
  const turn = typeof settings.turnUrl === "string" ? parseTurnUrl(settings.turnUrl) : undefined;
  if (turn) {
    const scheme = turn.transport === "tls" ? "turns" : "turn";
    const transport = turn.transport === "udp" ? "udp" : "tcp";
    servers.push({
      urls: `${scheme}:${turn.address}:${turn.port}?transport=${transport}`,
      username: turn.username,
      credential: turn.credential,
    });
  }
  return servers;
}
