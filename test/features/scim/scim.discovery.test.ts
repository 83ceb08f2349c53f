import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { connect, dmTo } from './support.ts';

// Many SCIM services serve their discovery endpoints (/ServiceProviderConfig, /Schemas, /ResourceTypes) to
// anyone: answering them says nothing about the token.
let t: TestApp;
let server: ScimServer;

beforeAll(async () => {
  server = await startScimServer({ publicDiscovery: true });
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(async () => {
  await t.stop();
  await server.close();
});

describe('connecting to a service whose discovery needs no token', () => {
  it('checks the token on a call that needs it', async () => {
    const wrong = new ScimClient(server.url, 'wrong-token', { allowPrivate: true });
    expect(await wrong.check().catch((e) => e)).toMatchObject({ kind: 'unauthorized', status: 401 });
    await new ScimClient(server.url, server.token, { allowPrivate: true }).check();
  });

  it('refuses a wrong token in the form and saves nothing, then connects with the right one', async () => {
    let form = await connect(t, server, 'wrong-token');
    expect(textOf(form)).toContain('Not connected: The service refused the token (401)');
    expect(await t.em().count(ScimConnection, {})).toBe(0);

    form = await connect(t, server);
    expect(textOf(form)).toContain('Connected.');
    await dmTo(t, 'UADMIN', /Sync with .* done/);
  });
});
