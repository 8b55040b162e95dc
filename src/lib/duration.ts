/**
 * A configured lifetime in the words user-facing copy uses ("5 minutes", "1 hour", "2 days"), so mails
 * and pages say what the configuration says instead of repeating its default.
 */
export function durationInWords(seconds: number): string {
  const units: Array<[number, string]> = [[86_400, 'day'], [3_600, 'hour'], [60, 'minute'], [1, 'second']];
  const [size, name] = units.find(([unit]) => seconds >= unit && seconds % unit === 0) ?? [1, 'second'];
  const count = Math.round(seconds / size);
  return `${count} ${name}${count === 1 ? '' : 's'}`;
}
