/**
 * A process that runs one filter pipeline and then waits to be killed: the
 * filters test kills it with SIGKILL (no cleanup of its own can run) and
 * checks that its GStreamer child ends anyway. Prints the child's pid. Not a
 * test file.
 */
import { GstVideoPipeline } from "../../../media-server/objects/filters/gstreamer.ts";

const pipeline = new GstVideoPipeline(["videoflip", "method=horizontal-flip"], { output: () => {}, exited: () => {} });
process.stdout.write(`${pipeline.pid}\n`);
// Keeps the process alive until it is killed.
setInterval(() => {}, 60_000);
