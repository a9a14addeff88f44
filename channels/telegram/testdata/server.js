// Runs telegram-test-api (a Bot API emulator) for the adapter's end-to-end
// test: node server.js <telegram-test-api module dir> <port>
//
// Prints {"ready":true,"url":…} once listening, then answers JSON lines on
// stdin with the emulator's client API (a simulated user):
//   {"id":1,"op":"send","client":{chatId,userId,type,firstName},"text":"…","options":{…}}
//   {"id":2,"op":"updates","client":{…}}  → the bot's messages to that chat
// Stops the server and exits when stdin closes.
'use strict';
const readline = require('readline');
const TelegramServer = require(process.argv[2]);

const token = process.env.TG_TOKEN;
const port = Number(process.argv[3]);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 600 });

function client(c) {
  return server.getClient(token, { timeout: 5000, interval: 20, ...c });
}

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function handle(req) {
  const c = client(req.client || {});
  switch (req.op) {
    case 'send':
      await c.sendMessage(c.makeMessage(req.text, req.options || {}));
      return null;
    case 'updates':
      return (await c.getUpdates()).result;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

server.start().then(() => {
  answer({ ready: true, url: server.config.apiURL });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      answer({ ok: false, error: String(e) });
      return;
    }
    handle(req).then(
      (result) => answer({ id: req.id, ok: true, result }),
      (e) => answer({ id: req.id, ok: false, error: String(e && e.message || e) }),
    );
  });
  rl.on('close', () => {
    server.stop().finally(() => process.exit(0));
  });
}, (e) => {
  process.stderr.write(`cannot start telegram-test-api: ${e}\n`);
  process.exit(1);
});
