// The XMPP server of Aoba (xmpp/, RFC 6120/6121) driven by a client that is
// not ours, npm @xmpp/client, over TCP with STARTTLS and over RFC 7395
// WebSocket (/xmpp-websocket), against the server e2e/run.sh started with
// AOBA_XMPP_ADDR. Every scenario runs over both transports with fresh users,
// talking to JSON-socket and REST users of the same server.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bare, chat, DOMAIN, history, MUC, NS, PASSWORD, poll, registerUser, rest, scenario, sendREST, suffix,
  TRANSPORTS, xml,
} from './xmpp.mjs';

// The server's STARTTLS certificate is the self-signed one embedded mode
// generates; this test process (only) accepts it. The test asserts that the
// stream did switch to TLS.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const TIMEOUT = { timeout: 90000 };

/** rosterItems returns the items of a roster result as {jid, name, subscription}. */
function rosterItems(iq) {
  return iq.getChild('query', NS.roster).getChildren('item').map((i) => ({
    jid: i.attrs.jid, name: i.attrs.name, subscription: i.attrs.subscription,
  }));
}

/** mucStatuses returns the status codes of a MUC presence. */
function mucStatuses(pres) {
  const x = pres.getChild('x', NS.mucUser);
  return x ? x.getChildren('status').map((s) => s.attrs.code) : [];
}

/** stanzaError returns the defined condition of an error stanza (or ''). */
function stanzaError(el) {
  const e = el.getChild('error');
  return e ? (e.children.find((c) => typeof c !== 'string' && c.attrs.xmlns === NS.stanzas)?.name || '') : '';
}

/** saslCondition resolves with the failure condition of a login that must fail. */
async function loginFails(s, user, transport, opts) {
  try {
    const c = await s.xmpp(user, transport, opts);
    assert.fail(`login with ${JSON.stringify(opts)} succeeded as ${c.jid}`);
  } catch (err) {
    if (err.code === 'ERR_ASSERTION') throw err;
    return err.condition || err.message;
  }
}

for (const transport of TRANSPORTS) {
  describe(`XMPP over ${transport === 'tcp' ? 'TCP with STARTTLS' : 'WebSocket'}`, () => {
    const tag = transport === 'tcp' ? 't' : 'w';

    test('password login (SASL PLAIN) by username and by user id, an Aoba session while the stream lasts',
      TIMEOUT, scenario(async (s) => {
        const alice = await registerUser(`xa${tag}`);
        const a = await s.xmpp(alice, transport, { resource: 'laptop' });
        assert.equal(a.jid, `${alice.jid}/laptop`, 'the bound JID is <user id>@domain/<resource>');

        const last = a.features.at(-1);
        if (transport === 'tcp') {
          const first = a.features[0];
          assert.ok(first.getChild('starttls', NS.tls)?.getChild('required'), `first features offer required STARTTLS: ${first}`);
          assert.ok(a.x.socket.secure, 'the TCP stream switched to TLS');
        } else {
          assert.equal(a.features[0].getChild('starttls', NS.tls), undefined, 'no STARTTLS over WebSocket');
        }
        const mechs = a.features.map((f) => f.getChild('mechanisms', NS.sasl)).find(Boolean)
          .getChildren('mechanism').map((m) => m.text());
        for (const m of ['PLAIN', 'OAUTHBEARER', 'X-OAUTH2']) assert.ok(mechs.includes(m), `${m} offered in ${mechs}`);
        assert.ok(last.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'), `bind offered after SASL: ${last}`);

        // The PLAIN login opened an Aoba session, listed with the REST ones, ended with the stream.
        const sessions = async () => (await rest('GET', '/api/users/me/sessions', { token: alice.token })).sessions;
        const xmppSession = (list) => list.find((x) => /XMPP/.test(x.user_agent));
        const open = xmppSession(await sessions());
        assert.ok(open, `an XMPP session is listed: ${JSON.stringify(await sessions())}`);
        await a.stop();
        await poll(async () => !xmppSession(await sessions()), 'the XMPP session ends with the stream');

        const byID = await s.xmpp(alice, transport, { authcid: alice.id, resource: 'phone' });
        assert.equal(byID.jid, `${alice.jid}/phone`, 'the user id works as authcid too');

        const noRes = await s.xmpp(alice, transport);
        assert.equal(bare(noRes.jid), alice.jid);
        assert.ok(noRes.jid.split('/')[1], `the server chose a resource: ${noRes.jid}`);

        assert.equal(await loginFails(s, alice, transport, { secret: 'wrong-password-123' }), 'not-authorized');
        assert.equal(await loginFails(s, { ...alice, name: `nobody_${suffix}` }, transport, {}), 'not-authorized');
      }));

    test('token login: OAUTHBEARER and X-OAUTH2 with an Aoba session token', TIMEOUT, scenario(async (s) => {
      const bob = await registerUser(`xb${tag}`);
      const ob = await s.xmpp(bob, transport, { mechanism: 'OAUTHBEARER', secret: bob.token, resource: 'ob' });
      assert.equal(ob.jid, `${bob.jid}/ob`);
      const xo = await s.xmpp(bob, transport, { mechanism: 'X-OAUTH2', secret: bob.token, resource: 'xo' });
      assert.equal(xo.jid, `${bob.jid}/xo`);
      // The token session stays valid when the stream ends (only PLAIN opens one of its own).
      await ob.stop();
      await rest('GET', '/api/users/me', { token: bob.token });

      assert.equal(await loginFails(s, bob, transport, { mechanism: 'OAUTHBEARER', secret: `${bob.token}x` }), 'not-authorized');
      assert.equal(await loginFails(s, bob, transport, { mechanism: 'X-OAUTH2', secret: 'not-a-token' }), 'not-authorized');
      // A token is not a password.
      assert.equal(await loginFails(s, bob, transport, { mechanism: 'PLAIN', secret: bob.token }), 'not-authorized');
    }));

    test('roster: a conversation partner is listed; roster set adds and removes an item, with pushes',
      TIMEOUT, scenario(async (s) => {
        const alice = await registerUser(`ra${tag}`);
        const bob = await registerUser(`rb${tag}`);
        const carol = await registerUser(`rc${tag}`);
        await sendREST(bob, alice.name, 'hello alice, this makes us partners');
        const a = await s.xmpp(alice, transport, { resource: 'r1' });

        const items = rosterItems(await a.iq('get', undefined, xml('query', { xmlns: NS.roster })));
        assert.deepEqual(items.find((i) => i.jid === bob.jid), { jid: bob.jid, name: bob.name, subscription: 'both' },
          `bob in ${JSON.stringify(items)}`);
        assert.equal(items.find((i) => i.jid === carol.jid), undefined, 'carol is nobody to alice yet');

        await a.iq('set', undefined, xml('query', { xmlns: NS.roster }, xml('item', { jid: carol.jid, name: 'Carol' })));
        // RFC 6121 2.1.6: a roster push carries exactly the one item that changed.
        const push = await a.wait((el) => el.is('iq') && el.attrs.type === 'set' && el.getChild('query', NS.roster),
          'roster push');
        assert.deepEqual(rosterItems(push), [{ jid: carol.jid, name: 'Carol', subscription: 'both' }], `push ${push}`);
        let now = rosterItems(await a.iq('get', undefined, xml('query', { xmlns: NS.roster })));
        assert.ok(now.find((i) => i.jid === carol.jid), `carol added: ${JSON.stringify(now)}`);
        assert.ok(now.find((i) => i.jid === bob.jid), 'bob still there');

        await a.iq('set', undefined, xml('query', { xmlns: NS.roster }, xml('item', { jid: carol.jid, subscription: 'remove' })));
        const removal = await a.wait((el) => el.is('iq') && el.attrs.type === 'set' && el.getChild('query', NS.roster),
          'roster push removing carol');
        assert.deepEqual(rosterItems(removal), [{ jid: carol.jid, name: undefined, subscription: 'remove' }], `push ${removal}`);
        now = rosterItems(await a.iq('get', undefined, xml('query', { xmlns: NS.roster })));
        assert.equal(now.find((i) => i.jid === carol.jid), undefined, `carol removed: ${JSON.stringify(now)}`);
      }));

    test('presence both ways with a JSON-socket user', TIMEOUT, scenario(async (s) => {
      const alice = await registerUser(`pa${tag}`);
      const bob = await registerUser(`pb${tag}`);
      await sendREST(bob, alice.name, 'partners, so we see each other');
      const a = await s.xmpp(alice, transport, { resource: 'desk' });

      a.send(xml('presence'));
      await a.waitPresence(bob.jid, 'unavailable'); // bob has no socket yet

      const b = await s.json(bob);
      await a.waitPresence(bob.jid, undefined);
      await b.request('presence.subscribe', { userIds: [alice.id] });
      await b.presence(alice.id, 'online');

      a.send(xml('presence', { type: 'unavailable' }));
      await b.presence(alice.id, 'offline');
      a.send(xml('presence'));
      await b.presence(alice.id, 'online');
      await a.waitPresence(bob.jid, undefined); // the contacts' presence again after the new initial presence

      await b.close();
      await a.waitPresence(bob.jid, 'unavailable');
    }));

    test('1:1 chat both ways with JSON-socket and REST users, kept in history', TIMEOUT, scenario(async (s) => {
      const alice = await registerUser(`ca${tag}`);
      const bob = await registerUser(`cb${tag}`);
      const a = await s.xmpp(alice, transport, { resource: 'desk' });
      const b = await s.json(bob);

      const id1 = `xmpp-${tag}-${suffix}-1`;
      a.send(chat(bob.jid, 'Hello Bob, from XMPP', id1));
      const m1 = await b.message('Hello Bob, from XMPP');
      assert.equal(m1.from, alice.name);
      assert.equal(m1.to, bob.name);
      assert.equal(m1.client_id, id1, 'the stanza id becomes the client_id');

      a.send(chat(`${bob.name}@${DOMAIN}`, 'Addressed by username'));
      await b.message('Addressed by username');

      // The same stanza id again stores and delivers nothing new.
      a.send(chat(bob.jid, 'Hello Bob, from XMPP', id1));
      a.send(chat(bob.jid, 'after the duplicate'));
      await b.message('after the duplicate');
      assert.deepEqual(b.inbox.takeAll((f) => f.type === 'message' && f.data.content === 'Hello Bob, from XMPP'), [],
        'no second message frame for a repeated stanza id');

      const r = await sendREST(bob, alice.name, 'Hi Alice, from REST');
      const got = await a.waitMessage('Hi Alice, from REST');
      assert.equal(got.attrs.type, 'chat');
      assert.equal(bare(got.attrs.from), bob.jid);
      assert.equal(bare(got.attrs.to), alice.jid);
      const sid = got.getChild('stanza-id', NS.sid);
      assert.ok(sid, `stanza-id in ${got}`);
      assert.equal(sid.attrs.id, r.id);
      assert.equal(sid.attrs.by, alice.jid);

      const viaSocket = await b.request('message.send', { to: alice.name, content: 'Hi Alice, from the JSON socket' });
      const got2 = await a.waitMessage('Hi Alice, from the JSON socket');
      assert.equal(got2.getChild('stanza-id', NS.sid)?.attrs.id, viaSocket.id);

      const h = await history(alice, bob.name);
      const contents = h.map((m) => m.content);
      for (const c of ['Hello Bob, from XMPP', 'Addressed by username', 'after the duplicate', 'Hi Alice, from REST',
        'Hi Alice, from the JSON socket']) {
        assert.equal(contents.filter((x) => x === c).length, 1, `"${c}" once in history: ${JSON.stringify(contents)}`);
      }
      assert.equal(h.find((m) => m.content === 'Hello Bob, from XMPP').from_id, alice.id);

      // An unknown recipient comes back as a message error.
      a.send(chat(`nobody-${suffix}@${DOMAIN}`, 'to nobody', 'to-nobody'));
      const err = await a.wait((el) => el.is('message') && el.attrs.type === 'error' && el.attrs.id === 'to-nobody',
        'message error for an unknown recipient');
      assert.ok(stanzaError(err), `a defined condition in ${err}`);
    }));

    test('multi-user chat on an Aoba group: join, messages both ways, a non-member refused',
      TIMEOUT, scenario(async (s) => {
        const alice = await registerUser(`ma${tag}`);
        const bob = await registerUser(`mb${tag}`);
        const carol = await registerUser(`mc${tag}`);
        const name = `Room ${tag} ${suffix}`;
        const { group } = await rest('POST', '/api/groups', { token: alice.token, body: { name }, want: 201 });
        const gid = group.group_id;
        await rest('POST', `/api/groups/${gid}/members`, { token: alice.token, body: { username: bob.name }, want: 201 });
        const room = `${gid}@${MUC}`;
        await sendREST(bob, gid, 'said before alice joined', 'groupchat');

        const a = await s.xmpp(alice, transport, { resource: 'muc' });
        const items = await a.iq('get', MUC, xml('query', { xmlns: NS.discoItems }));
        const rooms = items.getChild('query', NS.discoItems).getChildren('item').map((i) => i.attrs.jid);
        assert.ok(rooms.includes(room), `disco#items of ${MUC} lists ${room}: ${rooms}`);

        a.send(xml('presence', { to: `${room}/${alice.name}` }, xml('x', { xmlns: NS.muc })));
        const self = await a.wait((el) => el.is('presence') && el.attrs.from === `${room}/${alice.name}`
          && mucStatuses(el).includes('110'), 'self-presence with status 110');
        const item = self.getChild('x', NS.mucUser).getChild('item');
        assert.equal(item.attrs.affiliation, 'owner');
        assert.equal(item.attrs.role, 'moderator');
        const old = await a.waitMessage('said before alice joined', (el) => el.attrs.type === 'groupchat');
        assert.equal(old.attrs.from, `${room}/${bob.name}`);
        assert.ok(old.getChild('delay', NS.delay), `history carries <delay/>: ${old}`);
        const subject = await a.wait((el) => el.is('message') && el.getChild('subject'), 'the room subject');
        assert.equal(subject.getChildText('subject'), name);

        const b = await s.json(bob);
        await sendREST(bob, gid, 'Hello room, from REST', 'groupchat');
        const live = await a.waitMessage('Hello room, from REST', (el) => el.attrs.type === 'groupchat');
        assert.equal(live.attrs.from, `${room}/${bob.name}`);

        const gcID = `gc-${tag}-${suffix}`;
        a.send(xml('message', { type: 'groupchat', to: room, id: gcID }, xml('body', {}, 'Hello room, from XMPP')));
        const m = await b.message('Hello room, from XMPP');
        assert.equal(m.from, alice.name);
        assert.equal(m.to_id, gid);
        const echo = await a.waitMessage('Hello room, from XMPP', (el) => el.attrs.type === 'groupchat');
        assert.equal(echo.attrs.from, `${room}/${alice.name}`);
        assert.equal(echo.attrs.id, gcID, 'the echo keeps the id sent');
        assert.ok((await history(bob, gid)).find((x) => x.content === 'Hello room, from XMPP'), 'in the group history');

        // Another resource asking for another nick gets the username (status 210).
        const a2 = await s.xmpp(alice, transport, { resource: 'muc2' });
        a2.send(xml('presence', { to: `${room}/not-my-name` }, xml('x', { xmlns: NS.muc })));
        const renamed = await a2.wait((el) => el.is('presence') && mucStatuses(el).includes('110'), 'self-presence (second resource)');
        assert.equal(renamed.attrs.from, `${room}/${alice.name}`);
        assert.ok(mucStatuses(renamed).includes('210'), `status 210 in ${renamed}`);

        const c = await s.xmpp(carol, transport, { resource: 'muc' });
        c.send(xml('presence', { to: `${room}/${carol.name}` }, xml('x', { xmlns: NS.muc })));
        const refused = await c.wait((el) => el.is('presence') && el.attrs.type === 'error', 'join refused');
        assert.equal(stanzaError(refused), 'registration-required', `${refused}`);
        c.send(xml('message', { type: 'groupchat', to: room, id: 'intruder' }, xml('body', {}, 'let me in')));
        await c.wait((el) => el.is('message') && el.attrs.type === 'error' && el.attrs.id === 'intruder', 'groupchat refused');
        assert.equal((await history(bob, gid)).find((x) => x.content === 'let me in'), undefined);
      }));

    test('message archive (MAM urn:xmpp:mam:2) of 1:1 history, paged with RSM', TIMEOUT, scenario(async (s) => {
      const alice = await registerUser(`aa${tag}`);
      const dave = await registerUser(`ad${tag}`);
      const erin = await registerUser(`ae${tag}`);
      const sent = [];
      for (let i = 1; i <= 5; i++) sent.push(await sendREST(dave, alice.name, `archived ${i}`));
      await sendREST(erin, alice.name, 'not with dave');
      const a = await s.xmpp(alice, transport, { resource: 'mam' });

      let n = 0;
      const page = async (after) => {
        const queryid = `q${++n}`;
        const set = [xml('max', {}, '2')];
        if (after) set.push(xml('after', {}, after));
        const res = await a.iq('set', alice.jid, xml('query', { xmlns: NS.mam, queryid },
          xml('x', { xmlns: NS.data, type: 'submit' },
            xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.mam)),
            xml('field', { var: 'with' }, xml('value', {}, dave.jid))),
          xml('set', { xmlns: NS.rsm }, ...set)));
        // Results come before the iq result (XEP-0313 4.2).
        const results = a.inbox.takeAll((el) => el.is('message') && el.getChild('result', NS.mam)?.attrs.queryid === queryid);
        const fin = res.getChild('fin', NS.mam);
        assert.ok(fin, `<fin/> in ${res}`);
        return {
          fin,
          rows: results.map((el) => {
            const r = el.getChild('result', NS.mam);
            const fwd = r.getChild('forwarded', NS.forward);
            const msg = fwd.getChild('message');
            assert.ok(fwd.getChild('delay', NS.delay)?.attrs.stamp, `delay stamp in ${el}`);
            return { id: r.attrs.id, body: msg.getChildText('body'), from: bare(msg.attrs.from), to: bare(msg.attrs.to) };
          }),
        };
      };

      const p1 = await page();
      assert.deepEqual(p1.rows, sent.slice(0, 2).map((m) => ({ id: m.id, body: m.content, from: dave.jid, to: alice.jid })));
      const rsm1 = p1.fin.getChild('set', NS.rsm);
      assert.equal(rsm1.getChildText('first'), sent[0].id);
      assert.equal(rsm1.getChildText('last'), sent[1].id);
      assert.notEqual(p1.fin.attrs.complete, 'true');

      const p2 = await page(rsm1.getChildText('last'));
      assert.deepEqual(p2.rows.map((r) => r.body), ['archived 3', 'archived 4']);
      assert.deepEqual(p2.rows.map((r) => r.id), [sent[2].id, sent[3].id]);

      const p3 = await page(p2.fin.getChild('set', NS.rsm).getChildText('last'));
      assert.deepEqual(p3.rows.map((r) => r.id), [sent[4].id]);
      assert.equal(p3.fin.attrs.complete, 'true');
    }));

    test('message carbons (urn:xmpp:carbons:2) between resources of one user', TIMEOUT, scenario(async (s) => {
      const alice = await registerUser(`ka${tag}`);
      const bob = await registerUser(`kb${tag}`);
      const A = await s.xmpp(alice, transport, { resource: 'A' });
      const B = await s.xmpp(alice, transport, { resource: 'B' });
      const C = await s.xmpp(alice, transport, { resource: 'C' }); // carbons not enabled
      for (const r of [A, B]) await r.iq('set', undefined, xml('enable', { xmlns: NS.carbons }));
      for (const r of [A, B, C]) r.send(xml('presence'));
      const b = await s.json(bob);

      const sentCarbon = (body) => (el) => el.is('message')
        && el.getChild('sent', NS.carbons)?.getChild('forwarded', NS.forward)?.getChild('message')?.getChildText('body') === body;

      A.send(chat(bob.jid, 'sent from resource A', `carbon-${tag}-${suffix}`));
      await b.message('sent from resource A');
      const carbon = await B.wait(sentCarbon('sent from resource A'), '<sent> carbon of A\'s message');
      assert.equal(carbon.attrs.from, alice.jid, 'a carbon comes from the bare JID');
      const inner = carbon.getChild('sent', NS.carbons).getChild('forwarded', NS.forward).getChild('message');
      // Aoba keeps no resource with a message: the forwarded copy may come from the bare JID.
      assert.equal(bare(inner.attrs.from), alice.jid);
      assert.equal(bare(inner.attrs.to), bob.jid);

      // Sent from another Aoba device (REST): a carbon to every resource that enabled them.
      await sendREST(alice, bob.name, 'sent from REST by alice');
      await A.wait(sentCarbon('sent from REST by alice'), 'carbon of the REST message at A');
      await B.wait(sentCarbon('sent from REST by alice'), 'carbon of the REST message at B');

      // Received messages reach every resource directly.
      await sendREST(bob, alice.name, 'to all of alice');
      for (const r of [A, B, C]) await r.waitMessage('to all of alice', (el) => bare(el.attrs.from) === bob.jid);
      assert.deepEqual(C.inbox.takeAll((el) => el.is('message') && el.getChild('sent', NS.carbons)), [],
        'no carbons where they were not enabled');
    }));
  });
}
