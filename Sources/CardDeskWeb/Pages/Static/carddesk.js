// The page logic. First the compatibility check (is the agent reachable from this browser, and if not, is it
// missing or blocked), then what the page is for: signing in through the agent, watching the session (a removed
// card shows "You have been logged out" within a second or two), and the renewal with its progress.
// The passcode typed here goes to the agent on 127.0.0.1 only, never to the server.
'use strict';
window.CardDeskStarted = true;

const page = document.body.dataset.page;
const bridge = document.body.dataset.bridge;
const contactIT = document.body.dataset.contactIt || 'your IT service desk';
const contactRA = document.body.dataset.contactRa || 'your Registration Authority';
const byId = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function panel() { return byId('compat'); }

function explain(id, title, paragraphs, link) {
  const box = document.createElement('div');
  box.className = 'problem';
  box.id = 'problem-' + id;
  box.setAttribute('role', 'alert');
  const heading = document.createElement('h2');
  heading.textContent = title;
  box.appendChild(heading);
  for (const text of paragraphs) {
    const p = document.createElement('p');
    p.textContent = text;
    box.appendChild(p);
  }
  if (link) {
    const a = document.createElement('a');
    a.className = 'button';
    a.id = 'problem-' + id + '-action';
    a.href = link.href;
    a.textContent = link.text;
    const p = document.createElement('p');
    p.appendChild(a);
    box.appendChild(p);
  }
  panel().replaceChildren(box);
}

function note(text) {
  const p = document.createElement('p');
  p.className = 'ok';
  p.id = 'compat-ok';
  p.textContent = text;
  panel().replaceChildren(p);
}

async function bridgeCall(path, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeout || 5000);
  const headers = {};
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (document.body.dataset.bridgeToken) headers['Authorization'] = 'Bearer ' + document.body.dataset.bridgeToken;
  try {
    const response = await fetch(bridge + path, {
      method: options.method || 'GET', headers, mode: 'cors', credentials: 'omit', cache: 'no-store',
      body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: controller.signal,
      targetAddressSpace: 'loopback',
    });
    const data = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, data };
  } finally {
    clearTimeout(timer);
  }
}

function errorText(data, fallback) {
  return (data && data.error && data.error.message) || fallback;
}

async function localAccessPermission() {
  if (!navigator.permissions) return null;
  for (const name of ['loopback-network', 'local-network-access', 'local-network']) {
    try { return (await navigator.permissions.query({ name })).state; } catch (e) { /* not known to this browser */ }
  }
  return null;
}

/// The compatibility check: resolves with the agent's status once the agent answers; until then explains why not
/// and tries again every few seconds.
async function checkAgent() {
  for (;;) {
    try {
      const answer = await bridgeCall('/v1/status', { timeout: 2000 });
      if (answer.ok && answer.data.agent === 'carddesk') return answer.data;
    } catch (e) { /* unreachable: find out why below */ }
    const permission = await localAccessPermission();
    let presence = { seen: false };
    try { presence = await (await fetch('/api/v1/agents/presence', { cache: 'no-store' })).json(); } catch (e) { /* server down */ }
    if (presence.seen || permission === 'denied') {
      explain('agent-blocked', 'The CardDesk agent is running, but this browser is not allowed to reach it', [
        'Your browser is blocking this page from connecting to programs on this computer ("local network access"), ' +
        'so it cannot use your smartcard.',
        'To fix it: click the icon to the left of the address bar, allow "Local network access" (or "Apps on this device") ' +
        'for this site, then reload the page. On a managed computer, ask IT (' + contactIT + ') to allow this site ' +
        '(policies LocalNetworkAccessAllowedForUrls and LoopbackNetworkAllowedForUrls).',
      ]);
    } else {
      explain('agent-missing', 'The CardDesk agent is not running on this computer', [
        'The agent lets this page use your smartcard. It is not installed, or it has not been started.',
        'To fix it: start the agent (carddesk agent --reader READER --server ' + location.origin + '), or restart the ' +
        'computer if IT installed it for you. If that does not help, call ' + contactIT + '. This page checks again every few seconds.',
      ]);
    }
    await sleep(3000);
  }
}

/// Every second: has this session ended (card removed, logged out, idle)? Then say so.
async function watchSession() {
  for (;;) {
    await sleep(1000);
    try {
      const status = await (await fetch('/session/status', { cache: 'no-store' })).json();
      if (!status.active) {
        location.assign('/logged-out?reason=' + encodeURIComponent(status.reason || ''));
        return;
      }
    } catch (e) { /* the server is briefly unreachable: try again */ }
  }
}

// ---- Sign in -------------------------------------------------------------------------------------------------

/// The hand-over secret the agent put in the fragment of the page it opened. Read once, then removed from the
/// address bar (it never reaches the server: fragments are not sent).
let handoverSecret = (() => {
  const match = /(?:^#|&)handover=([0-9a-f]{64})/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return match[1];
})();

/// Joins the agent's session with a proof the agent accepts: its secret, or the card's passcode.
async function join(proof) {
  const handover = await bridgeCall('/v1/handover', { method: 'POST', body: proof });
  if (!handover.ok) throw new Error(errorText(handover.data, 'The agent could not hand over its session.'));
  const answer = await fetch('/login/handover', {
    method: 'POST', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': document.body.dataset.csrf },
    body: JSON.stringify({ code: handover.data.code }),
  });
  if (!answer.ok) throw new Error(errorText(await answer.json().catch(() => ({})), 'The server refused the sign-in.'));
  location.reload();
}

function showStep(id) {
  for (const step of document.querySelectorAll('.step')) step.hidden = step.id !== id;
}

function renderRoles(roles) {
  const list = byId('roles');
  list.replaceChildren();
  roles.forEach((role, index) => {
    const div = document.createElement('div');
    div.className = 'choice';
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'role';
    input.id = 'role-' + (index + 1);
    input.value = String(index + 1);
    if (index === 0) input.checked = true;
    const label = document.createElement('label');
    label.htmlFor = input.id;
    label.textContent = role;
    div.append(input, label);
    list.appendChild(div);
  });
}

async function signIn(status) {
  let phase = null;
  byId('signin-passcode').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = byId('passcode');
    const error = byId('signin-error');
    error.textContent = '';
    if (phase === 'signedIn') {
      // The card is signed in at the agent already: the passcode lets this page join that session.
      const passcode = input.value;
      input.value = '';
      try { await join({ passcode }); } catch (e) { error.textContent = e.message; }
      return;
    }
    const answer = await bridgeCall('/v1/login', { method: 'POST', body: { passcode: input.value } });
    input.value = '';
    if (!answer.ok) { error.textContent = errorText(answer.data, 'The agent could not sign you in.'); return; }
    if (answer.data.handoverSecret) handoverSecret = answer.data.handoverSecret;
    phase = null;
  });
  byId('signin-role').addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = document.querySelector('input[name=role]:checked');
    const answer = await bridgeCall('/v1/login/role', { method: 'POST', body: { number: Number(chosen.value) } });
    if (!answer.ok) { byId('signin-status').textContent = errorText(answer.data, 'The role could not be chosen.'); return; }
    phase = null;
  });
  for (;;) {
    if (status.phase !== phase) {
      phase = status.phase;
      const message = byId('signin-status');
      if (phase === 'noCard') {
        showStep('signin-card');
        message.textContent = 'Insert your smartcard into the reader.';
      } else if (phase === 'cardLocked') {
        showStep('signin-card');
        message.textContent = '';
        explain('card-locked', 'Your smartcard is locked', [
          'Three wrong passcodes locked the card. Unlock it first with self-service unlock: we send a code to your ' +
          'email or mobile, then you choose a new passcode. If that is not possible, go to ' + contactRA + '.',
        ], { href: '/unlock', text: 'Unlock your card' });
      } else if (phase === 'awaitingPasscode') {
        showStep('signin-passcode');
        byId('passcode').focus();
      } else if (phase === 'awaitingRole') {
        renderRoles(status.roles);
        showStep('signin-role');
      } else if (phase === 'signedIn') {
        showStep('signin-card');
        message.textContent = 'Signing you in…';
        const secret = handoverSecret;
        handoverSecret = null;
        let joined = false;
        if (secret) { try { await join({ secret }); joined = true; } catch (e) { /* expired or used: ask for the passcode */ } }
        if (joined) return;
        showStep('signin-passcode');
        message.textContent = 'Your smartcard is signed in on this computer. Enter your passcode to continue in this browser.';
        byId('passcode').focus();
      }
    }
    await sleep(400);
    try {
      const answer = await bridgeCall('/v1/status', { timeout: 2000 });
      if (answer.ok) status = answer.data;
    } catch (e) {
      status = await checkAgent();
      phase = null;
    }
  }
}

// ---- Renewal --------------------------------------------------------------------------------------------------

function renderProgress(progress) {
  let done = 0;
  for (const item of progress.items) {
    const row = document.querySelector('#renew-steps tr[data-profile="' + item.profile + '"]');
    if (!row) continue;
    row.querySelector('.stage').textContent = item.stage;
    const bar = row.querySelector('progress');
    bar.value = item.step;
    bar.textContent = item.step + ' of 4';
    done += item.step;
  }
  byId('renew-overall').value = done;
}

async function renew() {
  const choice = byId('renew-choice');
  if (!choice) return;
  showStep('renew-choice');
  choice.addEventListener('submit', (event) => {
    event.preventDefault();
    showStep('renew-passcode');
    byId('renew-passcode-input').focus();
  });
  byId('renew-passcode').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = byId('renew-passcode-input');
    const error = byId('renew-error');
    error.textContent = '';
    const started = performance.now();
    let answer;
    try {
      answer = await bridgeCall('/v1/renewal', { method: 'POST', body: { passcode: input.value } });
    } catch (e) {
      error.textContent = 'The CardDesk agent did not answer. Check that it is running, then try again.';
      return;
    } finally {
      input.value = '';
    }
    if (!answer.ok) {
      error.textContent = errorText(answer.data, 'The renewal could not start.');
      if (answer.data.error && answer.data.error.code === 'cardLocked') {
        explain('card-locked', 'Your smartcard is locked', [
          'Unlock it first with self-service unlock, then renew. If that is not possible, go to ' + contactRA + '.',
        ], { href: '/unlock', text: 'Unlock your card' });
      }
      return;
    }
    showStep('renew-progress');
    for (;;) {
      await sleep(150);
      let progress;
      try { progress = (await bridgeCall('/v1/renewal')).data; } catch (e) { continue; }
      if (progress.items) renderProgress(progress);
      if (progress.state === 'succeeded') {
        document.body.dataset.renewalMilliseconds = String(Math.round(performance.now() - started));
        byId('renew-done').hidden = false;
        byId('renew-success').focus();
        return;
      }
      if (progress.state === 'failed') {
        showStep('renew-passcode');
        error.textContent = (progress.message || 'The renewal stopped.') +
          ' Nothing was lost: enter your passcode to continue where it stopped.';
        return;
      }
    }
  });
}

// ---- Unlock and passcode change -------------------------------------------------------------------------------

function formError(id, answer, fallback) {
  byId(id).textContent = errorText(answer.data, fallback);
}

async function unlock() {
  const options = await bridgeCall('/v1/unlock/options', { method: 'POST', body: {} });
  if (!options.ok) {
    showStep('unlock-refused');
    byId('unlock-refused-text').textContent = errorText(options.data, 'Your card cannot be unlocked online. Go to ' + contactRA + '.');
    return;
  }
  const list = byId('unlock-contacts');
  options.data.contacts.forEach((contact, index) => {
    const div = document.createElement('div');
    div.className = 'choice';
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'unlock-channel';
    input.id = 'unlock-channel-' + contact.channel;
    input.value = contact.channel;
    if (index === 0) input.checked = true;
    const label = document.createElement('label');
    label.htmlFor = input.id;
    label.textContent = (contact.channel === 'email' ? 'Email to ' : 'Text message to ') + contact.masked;
    div.append(input, label);
    list.appendChild(div);
  });
  showStep('unlock-choose');
  byId('unlock-choose').addEventListener('submit', async (event) => {
    event.preventDefault();
    const channel = document.querySelector('input[name=unlock-channel]:checked').value;
    const sent = await bridgeCall('/v1/unlock/code', { method: 'POST', body: { channel } });
    if (!sent.ok) { formError('unlock-choose-error', sent, 'The code could not be sent.'); return; }
    byId('unlock-sent').textContent = 'We sent a 6-digit code by ' + (sent.data.channel === 'email' ? 'email' : 'text message') +
      ' to ' + sent.data.sentTo + '. It works once, for 15 minutes.';
    showStep('unlock-code');
    byId('unlock-code-input').focus();
  });
  byId('unlock-code').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = byId('unlock-code-input');
    byId('unlock-code-error').textContent = '';
    const checked = await bridgeCall('/v1/unlock/verify', { method: 'POST', body: { code: input.value.trim() } });
    input.value = '';
    if (!checked.ok) { formError('unlock-code-error', checked, 'The code could not be checked.'); return; }
    showStep('unlock-passcode');
    byId('unlock-new').focus();
  });
  byId('unlock-passcode').addEventListener('submit', async (event) => {
    event.preventDefault();
    byId('unlock-passcode-error').textContent = '';
    const answer = await bridgeCall('/v1/unlock/passcode', {
      method: 'POST', body: { passcode: byId('unlock-new').value, repeated: byId('unlock-again').value },
    });
    byId('unlock-new').value = '';
    byId('unlock-again').value = '';
    if (!answer.ok) { formError('unlock-passcode-error', answer, 'The passcode could not be set.'); return; }
    showStep('unlock-done');
    byId('unlock-success').focus();
  });
}

function changePasscode() {
  showStep('change-passcode');
  byId('change-passcode').addEventListener('submit', async (event) => {
    event.preventDefault();
    byId('change-error').textContent = '';
    const fields = ['change-current', 'change-new', 'change-again'].map(byId);
    const answer = await bridgeCall('/v1/passcode', {
      method: 'POST', body: { current: fields[0].value, passcode: fields[1].value, repeated: fields[2].value },
    });
    for (const field of fields) field.value = '';
    if (!answer.ok) { formError('change-error', answer, 'The passcode could not be changed.'); return; }
    showStep('change-done');
    byId('change-success').focus();
  });
}

/// Changing an unlock address: the passcode goes to the agent only, the card signs exactly this address, and the
/// form carries that signature (never the passcode) to the server.
function contactsConsent() {
  const form = byId('contacts-add');
  if (!form) return;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let error = byId('contacts-consent-error');
    if (!error) {
      error = document.createElement('p');
      error.id = 'contacts-consent-error';
      error.className = 'error';
      error.setAttribute('role', 'alert');
      form.appendChild(error);
    }
    error.textContent = '';
    const passcode = byId('contacts-passcode');
    const channel = form.querySelector('input[name=channel]:checked').value;
    const answer = await bridgeCall('/v1/contacts/consent', {
      method: 'POST', body: { passcode: passcode.value, challenge: form.elements.challenge.value, channel, address: form.elements.address.value },
    });
    passcode.value = '';
    if (!answer.ok) { error.textContent = errorText(answer.data, 'Your smartcard could not confirm the change.'); return; }
    form.elements.signature.value = answer.data.signature;
    form.submit();
  });
}

// ---- The RA desk: the card holder's card in the second reader ---------------------------------------------------

/// On a person's page in the RA console: what is in the agent's second reader and, when it is one of this person's
/// cards, renewing its certificates or repairing it (the holder types the passcode), unlocking it (the holder chooses
/// a new passcode) or clearing it; with a blank card, issuing it to this person. The passcodes go to the agent on this
/// computer only; the server decides whether this RA may.
async function deskWork() {
  const section = byId('desk');
  if (!section) return;
  const cards = section.dataset.cards.split(' ').filter(Boolean);
  const person = section.dataset.person;
  const status = byId('desk-status');
  const forms = { renew: byId('desk-renew'), repair: byId('desk-repair'), unlock: byId('desk-unlock'), clear: byId('desk-clear'), issue: byId('desk-issue') };
  let busy = false;
  const say = (text) => { if (status.textContent !== text) status.textContent = text; };
  /// Shows exactly the named forms (those the page has: the RA's role decides which).
  const show = (...names) => {
    for (const [name, form] of Object.entries(forms)) {
      if (form && form.hidden === names.includes(name)) form.hidden = !names.includes(name);
    }
  };
  // A request to the agent that always answers: an agent that does not reply is an answer too.
  const ask = async (path, body, timeout) => {
    try {
      return await bridgeCall(path, { method: 'POST', body, timeout });
    } catch (e) {
      return { ok: false, data: { error: { message: 'The CardDesk agent did not answer. Check that it is running, then try again.' } } };
    }
  };
  /// A form the agent answers at once; on success the page shows the outcome (`done`: the address's flag).
  const simple = (name, body, done, working) => {
    if (!forms[name]) return;
    forms[name].addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = byId('desk-' + name + '-error');
      error.textContent = '';
      const fields = [...forms[name].querySelectorAll('input[type=password]')];
      busy = true;
      if (working) say(working);
      const answer = await ask('/v1/subject/' + name, body(fields), 60000);
      for (const field of fields) field.value = '';
      busy = false;
      if (!answer.ok) { error.textContent = errorText(answer.data, 'The card work did not succeed.'); return; }
      location.assign('/ra/people/' + person + '?' + done + '=1');
    });
  };
  /// Renewal and repair: the holder's passcode, then the progress of each key pair until it ends.
  const stepwise = (name, path, done) => {
    if (!forms[name]) return;
    forms[name].addEventListener('submit', async (event) => {
      event.preventDefault();
      const input = byId('desk-' + name + '-passcode');
      const error = byId('desk-' + name + '-error');
      error.textContent = '';
      busy = true;
      const answer = await ask(path, { passcode: input.value });
      input.value = '';
      if (!answer.ok) { error.textContent = errorText(answer.data, 'The work could not start.'); busy = false; return; }
      byId('desk-' + name + '-progress').hidden = false;
      for (;;) {
        await sleep(200);
        let progress;
        try { progress = (await bridgeCall('/v1/subject/renewal')).data; } catch (e) { continue; }
        if (progress.items) {
          byId('desk-' + name + '-bar').value = progress.items.reduce((sum, item) => sum + item.step, 0);
          byId('desk-' + name + '-stage').textContent = progress.items.map((item) => item.profile + ': ' + item.stage).join(', ');
        }
        if (progress.state === 'succeeded') { location.assign('/ra/people/' + person + '?' + done + '=1'); return; }
        if (progress.state === 'failed') {
          byId('desk-' + name + '-progress').hidden = true;
          error.textContent = (progress.message || 'The work stopped.') + ' Nothing on the card was lost: start again to continue where it stopped.';
          busy = false;
          return;
        }
      }
    });
  };
  stepwise('renew', '/v1/subject/renewal', 'renewed');
  stepwise('repair', '/v1/subject/repair', 'repaired');
  simple('unlock', (fields) => ({ passcode: fields[0].value, repeated: fields[1].value }), 'unlocked');
  simple('clear', () => ({}), 'cleared', 'Clearing the card…');
  simple('issue', (fields) => byId('desk-issue-locked').checked ? { userID: person }
    : { userID: person, passcode: fields[0].value, repeated: fields[1].value }, 'issued',
  'Issuing the card: keys are made on the card and its certificates written…');
  for (;;) {
    if (!busy) {
      let subject = null;
      try {
        const answer = await bridgeCall('/v1/subject', { timeout: 2000 });
        if (answer.ok) subject = answer.data;
      } catch (e) { /* the agent is briefly unreachable: say so below */ }
      if (!subject) {
        say('The CardDesk agent on this computer did not answer. Check that it is running.');
        show();
      } else if (!subject.reader) {
        say('The CardDesk agent on this computer watches one reader. To work on a card holder\'s card, start it with a ' +
          'second reader (carddesk agent --subject-reader FOLDER, or --subject-pcsc NAME for a PC/SC reader).');
        show();
      } else if (subject.blank) {
        say(forms.issue ? 'A blank card is in your second reader: you may issue it to this person.'
          : 'A blank card is in your second reader. Your role may not issue cards: ask an RA Agent or your RA Manager.');
        show('issue');
      } else if (!subject.cardSerial) {
        say('Put the card holder\'s smartcard (or a blank card to issue) in your second reader (' + subject.reader + ').');
        show();
      } else if (!cards.includes(subject.cardSerial)) {
        say('The card in your second reader (' + subject.cardSerial + ') is not one of this person\'s cards in use.');
        show();
      } else if (subject.blocked) {
        say('Card ' + subject.cardSerial + ' is in your second reader. It is blocked for good (its unlock key too), so it ' +
          'cannot be unlocked: clear it to issue it again, or cancel it.');
        show('clear');
      } else if (subject.locked) {
        say('Card ' + subject.cardSerial + ' is in your second reader. It is locked: unlock it first, with a new passcode its holder chooses.');
        show('unlock', 'clear');
      } else {
        say('Card ' + subject.cardSerial + ' is in your second reader (' + subject.triesLeft + ' passcode tries left).');
        show('renew', 'repair', 'unlock', 'clear');
      }
    }
    await sleep(1000);
  }
}

// ---- Start ---------------------------------------------------------------------------------------------------

async function start() {
  if (page === 'home' || page === 'renew' || page === 'passcode' || page === 'ra') watchSession();
  const status = await checkAgent();
  note('Your browser is supported and the CardDesk agent is running.');
  if (page === 'signin') {
    await signIn(status);
  } else if (page === 'renew') {
    await renew();
  } else if (page === 'unlock') {
    await unlock();
  } else if (page === 'passcode') {
    changePasscode();
  } else if (page === 'home') {
    contactsConsent();
  } else if (page === 'ra') {
    await deskWork();
  }
}

if (window.CardDeskBrowserSupported && page !== 'logged-out' && page !== 'help' && page !== 'problem') {
  start();
}
