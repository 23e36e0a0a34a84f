/**
 * `npm run bridge:key -- <bridge-id>`: prints the key of one media bridge,
 * derived from the worker's BRIDGE_SECRET (read from the environment):
 * base64url(HMAC-SHA256(BRIDGE_SECRET, "bridge-key:" + id)). Give that bridge
 * `BRIDGE_ID=<bridge-id>` and `BRIDGE_KEY=<the key>` instead of the master
 * secret: it can then connect as that id only.
 */
import { deriveBridgeKey } from "../protocol/tokens/bridge-token.ts";

const MIN_SECRET_LENGTH = 16;
const id = process.argv[2];
const secret = process.env.BRIDGE_SECRET;
if (!id || process.argv.length > 3 || !/^[\w.:@-]{1,128}$/.test(id)) {
  process.stderr.write(
    "usage: BRIDGE_SECRET=<the worker's secret> npm run bridge:key -- <bridge-id>\n" +
      "  (a bridge id has 1–128 letters, digits and . _ : @ -)\n",
  );
  process.exit(2);
}
if (!secret || secret.length < MIN_SECRET_LENGTH) {
  process.stderr.write(`BRIDGE_SECRET must be set in the environment (at least ${MIN_SECRET_LENGTH} characters)\n`);
  process.exit(2);
}
process.stdout.write(`${await deriveBridgeKey(secret, id)}\n`);
