import type { NextFunction, Request, Response } from 'express';

/**
 * A 16×16 32-bit icon (a green disc on transparency), built once: browsers ask for /favicon.ico on
 * every page, and a 404 there fills the log and the console. An image answer needs nothing from
 * the CSP (it is fetched by the browser, not by the page's scripts).
 */
export function faviconIco(): Buffer {
  const size = 16;
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  const pixels = Buffer.alloc(size * size * 4);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      // Rows are stored bottom-up; the disc is symmetric, so the order does not matter here.
      const dx = col - 7.5;
      const dy = row - 7.5;
      const inside = dx * dx + dy * dy <= 7.5 * 7.5;
      const at = (row * size + col) * 4;
      pixels[at] = 0x3c; // blue
      pixels[at + 1] = 0xa0; // green
      pixels[at + 2] = 0x2b; // red
      pixels[at + 3] = inside ? 0xff : 0x00; // alpha
    }
  }
  const mask = Buffer.alloc(size * 4); // AND mask: 16 rows of 32 bits, all 0 (alpha decides)
  const info = Buffer.alloc(40);
  info.writeUInt32LE(40, 0);
  info.writeInt32LE(size, 4);
  info.writeInt32LE(size * 2, 8); // colour rows + mask rows
  info.writeUInt16LE(1, 12);
  info.writeUInt16LE(32, 14);
  info.writeUInt32LE(pixels.length + mask.length, 20);
  const image = Buffer.concat([info, pixels, mask]);
  header.writeUInt8(size, 6);
  header.writeUInt8(size, 7);
  header.writeUInt8(0, 8); // no palette
  header.writeUInt8(0, 9);
  header.writeUInt16LE(1, 10); // planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(image.length, 14);
  header.writeUInt32LE(22, 18); // offset of the image
  return Buffer.concat([header, image]);
}

/** Answers GET and HEAD /favicon.ico with the icon: public, cacheable for a day. */
export function faviconMiddleware(): (req: Request, res: Response, next: NextFunction) => void {
  const icon = faviconIco();
  return (req, res, next) => {
    if (req.path !== '/favicon.ico' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next();
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'image/x-icon');
    res.setHeader('Content-Length', String(icon.length));
    res.setHeader('Cache-Control', 'public, max-age=86400, immutable');
    res.end(req.method === 'HEAD' ? undefined : icon);
  };
}
