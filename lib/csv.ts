/**
 * CSV for spreadsheet apps: RFC 4180 fields, formula-safe, UTF-8 with a byte-order mark (Excel
 * opens a BOM-less UTF-8 file as the local code page and mangles accents), streamed in batches.
 */

/**
 * One field. Cells a spreadsheet would run as a formula (= + - @, tab, CR) get a leading
 * apostrophe: exported lists hold text typed by others (e-mails, aliases, reasons).
 */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",;\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (cells: readonly unknown[]): string => `${cells.map(csvField).join(',')}\r\n`;

export const BOM = '\uFEFF';

/**
 * A byte stream of the header and then every row `rows` yields, `batch` rows per chunk, so memory
 * stays flat whatever the size. Cancelling the download closes the row source.
 */
export function csvStream(header: readonly string[], rows: AsyncIterator<readonly unknown[]>, batch = 200): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(enc.encode(BOM + csvLine(header)));
          return;
        }
        let chunk = '';
        for (let i = 0; i < batch; i++) {
          const next = await rows.next();
          if (next.done) {
            if (chunk) controller.enqueue(enc.encode(chunk));
            controller.close();
            return;
          }
          chunk += csvLine(next.value);
        }
        controller.enqueue(enc.encode(chunk));
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await rows.return?.(undefined);
    },
  });
}
