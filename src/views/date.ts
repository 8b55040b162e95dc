/**
 * How every page shows a moment: in UTC ("2026-12-03 14:05 UTC"), with the machine-readable value for
 * `<time datetime>`, so nothing depends on the server's or the reader's time zone (pages run no script).
 */

export interface DateView {
  /** RFC 3339 in UTC, for `<time datetime>`. */
  iso: string;
  /** What the reader sees: "2026-12-03 14:05 UTC". */
  text: string;
}

export function dateView(value: Date | string): DateView;
export function dateView(value: Date | string | null | undefined): DateView | undefined;
export function dateView(value: Date | string | null | undefined): DateView | undefined {
  if (value === null || value === undefined) return undefined;
  const iso = new Date(value).toISOString();
  return { iso, text: `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` };
}
