import { z } from "zod";
import { KurentoError } from "../../errors.ts";
import { parseParams } from "../../protocol.ts";
import { MEDIA_ELEMENT_OPERATIONS } from "../media-element.ts";
import type { MediaObject, MediaServerContext } from "../media-object.ts";
import { type Caller, invokeOperation, noParams, operation, operationTable, type RawParams } from "../operations.ts";
import { inspectElement } from "./gstreamer.ts";
import { VideoFilter } from "./video-filter.ts";

export const gstreamerFilterParams = z
  .object({
    mediaPipeline: z.string().min(1),
    command: z.string().max(4096),
    filterType: z.enum(["AUDIO", "VIDEO", "AUTODETECT"]).nullish(),
  })
  .loose();

/** KMS answers every refused command with 40001 and these texts (checked against KMS 7.2). */
const ONE_ELEMENT = "Given command is not valid, only one element can be created";
const PAD_TEMPLATES = "Given command is not valid, pad templates don't match";

function refused(message: string, why?: string): KurentoError {
  return new KurentoError("MARSHALL_ERROR", why ? `${message} (${why})` : message);
}

function cannotCreate(detail: string): KurentoError {
  return new KurentoError("MARSHALL_ERROR", `GStreamer element cannot be created: ${detail}`);
}

/**
 * Properties that name files or devices (faceoverlay/rsvgoverlay `location`,
 * facedetect's `*-profile`, …): a filter must not read or write the server's
 * files or reach the network, whatever element it is.
 */
const FILE_PROPERTY = /^(location|uri|file|filename|path|device|.*-(profile|file|location|path|uri))$|^profile$/;
/** Elements that reach files, sockets or other processes even when they have a sink and a source pad. */
const IO_ELEMENT = /(file|udp|tcp|http|soup|curl|rtsp|rtmp|srt|rist|shm|socket|fd|uri|app|webrtc|dtls|ndi|zmq|ipc)/;

interface Token {
  readonly text: string;
  /** The value part was quoted, so `!`, `(` or `.` inside it are literal. */
  readonly quoted: boolean;
}

/** gst-launch's lexical rules, as far as one element needs: whitespace separates, "…" quotes, `!` links. */
function tokenize(command: string): Token[] {
  const tokens: Token[] = [];
  let current = "";
  let quoted = false;
  let inQuotes = false;
  const flush = () => {
    if (current) tokens.push({ text: current, quoted });
    current = "";
    quoted = false;
  };
  for (let i = 0; i < command.length; i++) {
    const char = command[i] ?? "";
    if (inQuotes) {
      if (char === "\\" && i + 1 < command.length) {
        current += command[i + 1];
        i += 1;
      } else if (char === '"') inQuotes = false;
      else current += char;
    } else if (char === '"') {
      inQuotes = true;
      quoted = true;
    } else if (/\s/.test(char)) flush();
    else if (char === "!") {
      flush();
      tokens.push({ text: "!", quoted: false });
    } else current += char;
  }
  if (inQuotes) throw cannotCreate("unterminated quote");
  flush();
  return tokens;
}

/**
 * Checks a GStreamerFilter command as KMS does (one element, with an always
 * sink pad and an always source pad: no bins, chains, sources or sinks;
 * existing properties), and beyond KMS refuses elements and properties that
 * reach files, devices or the network, and audio elements (the embedded
 * server filters video only). Returns the tokens for gst-launch.
 */
export function validateCommand(command: string): string[] {
  const tokens = tokenize(command);
  const [first, ...rest] = tokens;
  if (!first) throw cannotCreate("empty pipeline not allowed");
  if (tokens.some((token) => !token.quoted && /^[!()]$|[()]/.test(token.text))) throw refused(ONE_ELEMENT);
  const name = first.text;
  if (first.quoted || !/^[A-Za-z][\w-]*$/.test(name)) throw cannotCreate(`no element "${name}"`);
  const properties: string[] = [];
  for (const token of rest) {
    const equals = token.text.indexOf("=");
    // A bare word is a second element, unlinked: KMS builds a bin of both and refuses it.
    if (equals < 0) throw refused(ONE_ELEMENT);
    const key = token.text.slice(0, equals);
    if (!/^[A-Za-z][\w-]*$/.test(key)) throw cannotCreate(`cannot parse "${token.text}"`);
    if (equals === token.text.length - 1 && !token.quoted) throw cannotCreate(`property "${key}" has no value`);
    properties.push(key);
  }
  const info = inspectElement(name);
  if (!info) throw cannotCreate(`no element "${name}"`);
  if (info.isBin) throw refused(ONE_ELEMENT, `${name} is a bin`);
  for (const key of properties) {
    if (!info.properties.has(key)) throw cannotCreate(`no property "${key}" in element "${name}"`);
    if (FILE_PROPERTY.test(key)) throw refused(PAD_TEMPLATES, `property "${key}" names a file or device`);
  }
  if (info.alwaysSinkPads !== 1 || info.alwaysSrcPads !== 1) {
    throw refused(PAD_TEMPLATES, `${name} is not a filter with one input and one output: "${info.klass}"`);
  }
  if (/Source|Sink|Network/.test(info.klass) || IO_ELEMENT.test(name)) {
    throw refused(PAD_TEMPLATES, `${name} reaches files or the network ("${info.klass}"), which filters may not`);
  }
  if (/Audio/.test(info.klass) && !/Video/.test(info.klass)) {
    throw refused(PAD_TEMPLATES, `${name} is an audio element; the embedded media server filters video only`);
  }
  const launchTokens = tokens.map((token) => (token.quoted ? quoteValue(token.text) : token.text));
  return name === "videoflip" ? launchTokens.map(videoflipDirection) : launchTokens;
}

/** videoflip's deprecated `method` values and the `video-direction` value each stands for (same order, 0–8). */
const VIDEOFLIP_METHODS = [
  ["none", "identity"],
  ["clockwise", "90r"],
  ["rotate-180", "180"],
  ["counterclockwise", "90l"],
  ["horizontal-flip", "horiz"],
  ["vertical-flip", "vert"],
  ["upper-left-diagonal", "ul-lr"],
  ["upper-right-diagonal", "ur-ll"],
  ["automatic", "auto"],
] as const;

/**
 * GStreamer 1.22's videoflip ignores `method` set by gst-launch (the
 * picture stays as it is; `video-direction` works), while KMS's GStreamer
 * honours it and Kurento's examples use it: the same setting, said the way
 * this GStreamer hears it.
 */
function videoflipDirection(token: string): string {
  const match = /^method="?([^"]*)"?$/.exec(token);
  if (!match) return token;
  const value = match[1] ?? "";
  const entry = VIDEOFLIP_METHODS.find(([nick], index) => nick === value || String(index) === value);
  return entry ? `video-direction=${entry[1]}` : token;
}

/** Puts a quoted `key=value` back in gst-launch's syntax. */
function quoteValue(text: string): string {
  const equals = text.indexOf("=");
  const value = text.slice(equals + 1).replace(/["\\]/g, "\\$&");
  return `${text.slice(0, equals + 1)}"${value}"`;
}

/**
 * Kurento's GStreamerFilter: any one GStreamer video filter element (such
 * as `videoflip method=horizontal-flip`) between decoder and encoder.
 */
export class GStreamerFilter extends VideoFilter {
  readonly typeName = "GStreamerFilter";
  readonly command: string;
  private readonly elements: readonly string[];

  constructor(context: MediaServerContext, pipeline: MediaObject, command: string) {
    const elements = validateCommand(command);
    super(context, "GStreamerFilter", pipeline);
    this.command = command;
    this.elements = elements;
    this.reconfigure().catch((error: unknown) =>
      context.log(`${this.id}: starting GStreamer failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(GSTREAMER_FILTER_OPERATIONS, this, name, params, caller);
  }

  protected filterElements(): readonly string[] {
    return this.elements;
  }
}

/** The constructor's checks in the order KMS makes them: params, then the filter type, then the command. */
export function gstreamerFilterOptions(raw: Record<string, unknown> | undefined) {
  const params = parseParams(gstreamerFilterParams, raw, "GStreamerFilter constructor");
  if (params.filterType === "AUDIO") {
    throw new KurentoError(
      "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
      "filterType AUDIO is not supported by the embedded media server: its GStreamerFilter filters video only",
    );
  }
  return params;
}

const GSTREAMER_FILTER_OPERATIONS = operationTable<GStreamerFilter>(MEDIA_ELEMENT_OPERATIONS, {
  getCommand: operation(noParams, (filter) => filter.command),
});
