import { readFile } from 'node:fs/promises';

/** A UTF-8 file's text, or '' when it does not exist (any other error is thrown). */
export async function readTextFileOrEmpty(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return '';
    }
    throw err;
  }
}
