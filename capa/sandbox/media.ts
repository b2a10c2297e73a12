import { deflateSync } from 'node:zlib';

/**
 * Real (if plain) images for the sandbox's media URLs, made in code: a PNG with a coloured card,
 * a band and a stripe per kind, so the console's thumbnails and the dossier show real pictures
 * through the same path as Capa's files — and an SVG (which a browser would run scripts in) never
 * has to be passed through.
 */

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

type Rgb = [number, number, number];

/** A width×height RGB PNG whose pixel colour is `paint(x, y)`. */
export function png(width: number, height: number, paint: (x: number, y: number) => Rgb): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) raw.set(paint(x, y), row + 1 + x * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const MEDIA_FILES = {
  'front-id.png': [91, 123, 181],
  'back-id.png': [72, 145, 110],
  'selfie.png': [181, 110, 91],
} as const satisfies Record<string, Rgb>;
export type MediaFile = keyof typeof MEDIA_FILES;

const cache = new Map<string, Buffer>();

/** The sandbox's picture for one media file: a pale card with a coloured band and a face-ish disc for the selfie. */
export function mediaPng(file: MediaFile): Buffer {
  const hit = cache.get(file);
  if (hit) return hit;
  const [r, g, b] = MEDIA_FILES[file];
  const out = png(240, 150, (x, y) => {
    if (file === 'selfie.png' && (x - 120) ** 2 + (y - 75) ** 2 < 45 ** 2) return [r, g, b];
    if (file !== 'selfie.png' && y < 30) return [r, g, b];
    if (file !== 'selfie.png' && x > 20 && x < 80 && y > 50 && y < 120) return [200, 200, 200];
    return [232, 238, 247];
  });
  cache.set(file, out);
  return out;
}
