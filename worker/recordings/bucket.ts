/**
 * Where a recording's files live in the R2 bucket (binding RECORDINGS):
 * `recordings/<id>/<file name>`, so one prefix holds a recording and
 * deleting it is one listing.
 */

export function fileKey(recording: string, name: string): string {
  return `${recordingPrefix(recording)}${name}`;
}

function recordingPrefix(recording: string): string {
  return `recordings/${recording}/`;
}

/** Deletes every object of the recording, a listing (at most 1000 keys) at a time until none is left. */
export async function deleteRecordingFiles(bucket: R2Bucket, recording: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await bucket.list({ prefix: recordingPrefix(recording) });
    const keys = page.objects.map((o) => o.key);
    if (keys.length === 0) return deleted;
    await bucket.delete(keys);
    deleted += keys.length;
  }
}
