/** Configured values in the words a page or mail uses, so copy never repeats a number the config owns. */

/** "5 minutes", "1 minute", "90 seconds", "2 hours": a lifetime in seconds, exact (never rounded). */
export function durationInWords(seconds: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (seconds % 3600 === 0 && seconds >= 3600) return unit(seconds / 3600, 'hour');
  if (seconds % 60 === 0 && seconds >= 60) return unit(seconds / 60, 'minute');
  return unit(seconds, 'second');
}
