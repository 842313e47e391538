// A mail client's cache kept in step with imapflow (which also turns on COMPRESS=DEFLATE when
// the server offers it), the way a real client does it: "cache"
// reads a mailbox once into a JSON file; "resync" reconnects with QRESYNC (SELECT ...
// (QRESYNC (uidvalidity modseq))), applies the VANISHED and FETCH it is sent, fetches the
// messages above its highest known UID and writes the cache back with what it saw.
//   node qresync-sync.js HOST PORT USER PASS cache|resync STATEFILE
'use strict';
const fs = require('fs');
const { ImapFlow } = require('imapflow');

const [host, port, user, pass, phase, stateFile] = process.argv.slice(2);

function client() {
    return new ImapFlow({
        host,
        port: Number(port),
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass },
        qresync: true,
        logger: false
    });
}

async function readAll(c, range, cache) {
    for await (const msg of c.fetch(range, { uid: true, flags: true }, { uid: true })) {
        cache.messages[msg.uid] = [...msg.flags].sort();
    }
}

async function main() {
    const c = client();
    const seen = { vanished: [], flags: [] };
    c.on('expunge', ev => seen.vanished.push({ uid: ev.uid, earlier: !!ev.earlier }));
    c.on('flags', ev => {
        seen.flags.push(ev.uid);
        if (cache && ev.uid) cache.messages[ev.uid] = [...ev.flags].sort();
    });
    let cache = phase === 'resync' ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : null;
    await c.connect();
    if (phase === 'cache') {
        const box = await c.mailboxOpen('INBOX');
        cache = { uidValidity: box.uidValidity.toString(), modseq: box.highestModseq.toString(),
                  messages: {} };
        await readAll(c, '1:*', cache);
    } else {
        const box = await c.mailboxOpen('INBOX', {
            uidValidity: BigInt(cache.uidValidity),
            changedSince: BigInt(cache.modseq)
        });
        for (const v of seen.vanished) delete cache.messages[v.uid];
        const known = Object.keys(cache.messages).map(Number);
        const top = known.length ? Math.max(...known) : 0;
        if (box.uidNext > top + 1) await readAll(c, `${top + 1}:*`, cache);
        cache.modseq = box.highestModseq.toString();
        cache.seen = { vanished: [...seen.vanished], flags: [...seen.flags] };
        cache.enabled = [...c.enabled].sort();
        cache.compressed = !!c._deflate; // imapflow asks for COMPRESS=DEFLATE when offered
        // One change of its own, then FETCH ... (CHANGEDSINCE) must return only that message.
        const first = Math.min(...Object.keys(cache.messages).map(Number));
        const since = box.highestModseq; // imapflow raises box's own as changes come in
        await c.messageFlagsAdd(String(first), ['$Synced'], { uid: true });
        cache.changedSince = [];
        for await (const msg of c.fetch('1:*', { uid: true, flags: true },
                                        { uid: true, changedSince: since })) {
            cache.changedSince.push(msg.uid);
        }
    }
    await c.logout();
    fs.writeFileSync(stateFile, JSON.stringify(cache));
}

main().catch(err => {
    console.error(err && err.stack || err);
    process.exit(1);
});
