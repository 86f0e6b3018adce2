import { readdir, readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'

/** A file served from bytes read once, with the type it is served as. */
export interface StaticAsset {
  contentType: string
  bytes: Buffer
}

// The types a browser needs to accept these files under `nosniff`; files of another kind are not read.
const CONTENT_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
}

/** Reads every file of known type directly in `directory`, once: answers then send the same bytes, never the disk. */
export async function readStaticAssets (directory: string): Promise<Map<string, StaticAsset>> {
  const entries = await readdir(directory, { withFileTypes: true })
  const assets = await Promise.all(entries
    .filter((entry) => entry.isFile() && CONTENT_TYPES[extname(entry.name)] !== undefined)
    .map(async (entry): Promise<[string, StaticAsset]> =>
      [entry.name, { contentType: CONTENT_TYPES[extname(entry.name)]!, bytes: await readFile(join(directory, entry.name)) }]))
  return new Map(assets)
}
