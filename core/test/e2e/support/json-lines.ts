/**
 * The JSON lines of a log another process is still writing: every complete line that is a JSON object. The text
 * after the last newline may be a line caught half-written (a log file read while the process appends to it); it is
 * left for the next read.
 */
export function completeJsonLines(text: string): Array<Record<string, unknown>> {
  const end = text.lastIndexOf('\n');
  if (end === -1) return [];
  return text
    .slice(0, end)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
