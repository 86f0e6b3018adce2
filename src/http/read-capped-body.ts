/**
 * The UTF-8 text of a body read only up to `maxBytes`: past it, reading stops (leaving the loop ends the
 * stream: undici's body is destroyed, a fetch body cancelled) and `tooLarge()` is thrown. An answer far
 * larger than it should be is not buffered whole.
 */
export async function readCappedText (body: AsyncIterable<Uint8Array>, maxBytes: number, tooLarge: () => Error): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.byteLength
    if (size > maxBytes) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
