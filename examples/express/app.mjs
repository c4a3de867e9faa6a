// SPDX-License-Identifier: MIT
// An Express app behind latch: every page but /login needs a logged-in user.
//
//   npm install express ./bindings/node && LATCH_SOCKET=/run/latch/latchd.sock node examples/express/app.mjs
//
// (The session cookie is Secure, __Host- prefixed: serve it over HTTPS, or
// pass cookieName: 'sid' while trying it on http://localhost.)

import express from 'express';
import { latch } from '@latch/client/express'; // latch

const app = express();
const auth = latch({ service: 'demo' }); // latch: serves /login (CSRF-protected) and /logout
app.use(auth); // latch

app.get('/', auth.required, (req, res) => { // latch
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  res.send(`<p>Hello ${esc(req.latch.user)} (groups: ${esc((req.latch.claims.groups || []).join(', '))})</p>` + // latch
    `<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="${esc(auth.csrfToken(req))}">` + // latch
    '<button>Log out</button></form>');
});

app.listen(Number(process.env.PORT || 3000), '127.0.0.1');
