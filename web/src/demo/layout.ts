/**
 * The seed demo's thumbnail rule: thumbnails are 14% wide until there are
 * more than 7 of them (7 × 14% = 98%); from then on they share 98% equally.
 */
export const THUMBNAIL_WIDTH_PERCENT = 14;
export const THUMBNAIL_ROW_PERCENT = 98;

export function thumbnailWidthPercent(count: number): number {
  const fitting = Math.floor(THUMBNAIL_ROW_PERCENT / THUMBNAIL_WIDTH_PERCENT);
  return count > fitting ? THUMBNAIL_ROW_PERCENT / count : THUMBNAIL_WIDTH_PERCENT;
}
