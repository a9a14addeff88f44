/*
 * 知音在线客服 — the embeddable web chat widget. Plain JavaScript, no
 * dependencies, no third-party requests.
 *
 *   <script src="https://HOST:18789/chat/widget.js" data-zhiyin-title="在线客服"></script>
 *
 * Attributes: data-zhiyin-title (window title), data-zhiyin-name (the
 * visitor's display name, if the site knows it), data-zhiyin-mode="page"
 * (fill the window, as /chat does; default: a floating button).
 * The site's origin must be listed in channels.webchat.allowed_origins.
 * Protocol: see channels/webchat/doc.go.
 */
(function () {
  'use strict';
  if (window.ZhiyinChat) { return; } // loaded twice

  var DEFAULT_TITLE = "__ZHIYIN_TITLE__";
  var HISTORY_MAX = 100;
  var PING_EVERY = 25000;

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var src = (script && script.src) || (location.origin + '/chat/widget.js');
  var base = src.replace(/widget\.js(?:[?#].*)?$/, '');
  var wsURL = base.replace(/^http(s?):/, 'ws$1:') + 'ws';
  function attr(name) { return (script && script.getAttribute('data-zhiyin-' + name)) || ''; }
  var title = attr('title') || DEFAULT_TITLE;
  var pageMode = attr('mode') === 'page';
  var visitorName = attr('name');

  // Storage may be unavailable (private mode, blocked cookies): then the
  // visitor is new on every load.
  function load(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } }
  function save(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* ignore */ } }

  function uuid() {
    var c = window.crypto;
    if (c && c.randomUUID) { return c.randomUUID(); }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) { c.getRandomValues(b); } else { for (var i = 0; i < 16; i++) { b[i] = Math.floor(Math.random() * 256); } }
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = '';
    for (var j = 0; j < 16; j++) { h += (b[j] + 256).toString(16).slice(1); if (j === 3 || j === 5 || j === 7 || j === 9) { h += '-'; } }
    return h;
  }

  var visitor = load('zhiyin.visitor');
  if (!visitor || !/^[A-Za-z0-9_-]{8,64}$/.test(visitor)) {
    visitor = uuid();
    save('zhiyin.visitor', visitor);
  }
  var historyKey = 'zhiyin.history.' + visitor;

  // ---- text rendering -------------------------------------------------

  function escapeHTML(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }

  // A small, safe Markdown subset: code blocks, inline code, bold, italic,
  // http(s) links and line breaks. The text is escaped first, so nothing
  // the bot says can become markup.
  function markdown(text) {
    var blocks = [];
    var s = escapeHTML(text.replace(/\u0000/g, '')).replace(/```[^\n]*\n?([\s\S]*?)```/g, function (_, code) {
      blocks.push('<pre><code>' + code.replace(/\n$/, '') + '</code></pre>');
      return '\u0000' + (blocks.length - 1) + '\u0000';
    });
    s = s.replace(/`([^`\n]+)`/g, '<code>$1</code>')
      .replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>')
      .replace(/(^|[^*])\*([^*\n]+)\*/g, '$1<em>$2</em>')
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>')
      .replace(/\n/g, '<br>');
    return s.replace(/\u0000(\d+)\u0000/g, function (_, i) { return blocks[+i]; });
  }

  // ---- DOM --------------------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  if (!document.querySelector('link[data-zhiyin-css]')) {
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = base + 'widget.css';
    link.setAttribute('data-zhiyin-css', '');
    (document.head || document.documentElement).appendChild(link);
  }

  var root = el('div', 'zy-root ' + (pageMode ? 'zy-pagemode' : 'zy-float'));
  var launcher = el('button', 'zy-launcher');
  launcher.type = 'button';
  launcher.setAttribute('aria-label', '打开' + title);
  launcher.appendChild(el('span', 'zy-launcher-icon', '\uD83D\uDCAC'));
  launcher.appendChild(el('span', 'zy-launcher-text', '在线咨询'));
  var badge = el('span', 'zy-badge');
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el('div', 'zy-panel');
  panel.setAttribute('role', pageMode ? 'main' : 'dialog');
  panel.setAttribute('aria-label', title);
  var header = el('div', 'zy-header');
  header.appendChild(el('span', 'zy-title', title));
  var statusEl = el('span', 'zy-status', '');
  header.appendChild(statusEl);
  var closeBtn = el('button', 'zy-close', '\u00D7');
  closeBtn.type = 'button';
  closeBtn.setAttribute('aria-label', '关闭');
  if (!pageMode) { header.appendChild(closeBtn); }
  var log = el('div', 'zy-log');
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'polite');
  var form = el('form', 'zy-form');
  var input = el('textarea', 'zy-input');
  input.rows = 1;
  input.placeholder = '请输入您的问题，按 Enter 发送';
  input.setAttribute('aria-label', '消息');
  var sendBtn = el('button', 'zy-send', '发送');
  sendBtn.type = 'submit';
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(form);
  if (!pageMode) { root.appendChild(launcher); }
  root.appendChild(panel);

  // ---- state ------------------------------------------------------------

  var ws = null;
  var ready = false;
  var connSeq = 0;      // increments on every ready socket
  var attempt = 0;      // reconnect attempts since the last ready
  var reconnectTimer = null;
  var pingTimer = null;
  var isOpen = pageMode;
  var unread = 0;
  var pending = [];     // unacknowledged messages: {id, text, el, sentOn}
  var shown = {};       // reply ids already on screen
  var history = [];     // {k: 'me'|'bot', t, m, id, p}

  function setStatus(text) { statusEl.textContent = text; }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addMessage(kind, text, md) {
    var m = el('div', 'zy-msg zy-' + kind);
    var bubble = el('div', 'zy-bubble' + (md ? ' zy-md' : ''));
    if (md) { bubble.innerHTML = markdown(text); } else { bubble.textContent = text; }
    m.appendChild(bubble);
    if (kind !== 'sys') { m.appendChild(el('span', 'zy-meta', '')); }
    log.appendChild(m);
    scrollDown();
    return m;
  }

  function meta(m, text) {
    var s = m.querySelector('.zy-meta');
    if (s) { s.textContent = text; }
  }

  function saveHistory() {
    if (history.length > HISTORY_MAX) { history = history.slice(history.length - HISTORY_MAX); }
    save(historyKey, JSON.stringify(history));
  }

  function remember(entry) { history.push(entry); saveHistory(); }

  function settle(id) {
    for (var i = 0; i < history.length; i++) {
      if (history[i].id === id && history[i].p) { delete history[i].p; saveHistory(); return; }
    }
  }

  function forget(id) {
    history = history.filter(function (h) { return h.id !== id; });
    saveHistory();
  }

  function findPending(id) {
    for (var i = 0; i < pending.length; i++) { if (pending[i].id === id) { return i; } }
    return -1;
  }

  // ---- socket -------------------------------------------------------------

  function send(obj) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(obj)); return true; }
    return false;
  }

  // flush sends every pending message not yet sent on this socket; the
  // server deduplicates resends (visitor + id).
  function flush() {
    if (!ready) { return; }
    for (var i = 0; i < pending.length; i++) {
      var p = pending[i];
      if (p.sentOn === connSeq || p.held) { continue; }
      if (!send({ type: 'message', id: p.id, text: p.text })) { return; }
      p.sentOn = connSeq;
    }
  }

  function connect() {
    if (ws) { return; }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setStatus('连接中…');
    var sock;
    try { sock = new WebSocket(wsURL); } catch (e) { scheduleReconnect(); return; }
    ws = sock;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: 'hello', visitor: visitor, name: visitorName }));
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f.type === 'string') { onFrame(f); }
    };
    sock.onclose = function () {
      if (ws !== sock) { return; }
      ws = null;
      ready = false;
      clearInterval(pingTimer);
      setStatus('连接已断开，正在重连…');
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer) { return; }
    var delay = Math.min(30000, 1000 * Math.pow(2, attempt));
    attempt++;
    delay = delay / 2 + Math.random() * delay / 2;
    reconnectTimer = setTimeout(function () { reconnectTimer = null; connect(); }, delay);
  }

  function onFrame(f) {
    var i;
    switch (f.type) {
      case 'ready':
        ready = true;
        attempt = 0;
        connSeq++;
        setStatus('在线');
        clearInterval(pingTimer);
        pingTimer = setInterval(function () { send({ type: 'ping' }); }, PING_EVERY);
        flush();
        break;
      case 'ack':
        i = findPending(f.id);
        if (i >= 0) {
          meta(pending[i].el, '\u2713');
          pending[i].el.classList.add('zy-acked');
          pending.splice(i, 1);
          settle(f.id);
        }
        break;
      case 'reply':
        if (typeof f.id !== 'string' || shown[f.id]) { break; }
        shown[f.id] = true;
        addMessage('bot', String(f.text || ''), !!f.markdown);
        remember({ k: 'bot', t: String(f.text || ''), m: !!f.markdown, id: f.id });
        if (!isOpen) { unread++; badge.textContent = String(unread); badge.hidden = false; }
        break;
      case 'error':
        onError(f);
        break;
    }
  }

  function onError(f) {
    var i = f.id ? findPending(f.id) : -1;
    if (i < 0) {
      if (f.code === 'bad_visitor') {
        visitor = uuid();
        save('zhiyin.visitor', visitor);
        send({ type: 'hello', visitor: visitor, name: visitorName });
      }
      return;
    }
    var p = pending[i];
    if (f.code === 'rate_limited' || f.code === 'unavailable') {
      // Temporary: send it again a little later.
      p.held = true;
      meta(p.el, f.code === 'rate_limited' ? '发送太快，稍后重试…' : '服务繁忙，稍后重试…');
      setTimeout(function () { p.held = false; p.sentOn = -1; meta(p.el, ''); flush(); }, f.code === 'rate_limited' ? 2000 : 3000);
      return;
    }
    // Permanent: show why and offer nothing to retry.
    pending.splice(i, 1);
    forget(p.id);
    p.el.classList.add('zy-failed');
    meta(p.el, '发送失败：' + (f.message || f.code));
  }

  // ---- user actions -------------------------------------------------------

  function submit(text) {
    text = String(text || '').trim();
    if (!text) { return false; }
    var id = uuid();
    var m = addMessage('me', text, false);
    meta(m, '发送中…');
    pending.push({ id: id, text: text, el: m, sentOn: -1 });
    remember({ k: 'me', t: text, id: id, p: true });
    connect();
    flush();
    return true;
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (submit(input.value)) { input.value = ''; }
    input.focus();
  });
  input.addEventListener('keydown', function (e) {
    // Enter sends; Shift+Enter is a new line; never while an input method
    // is composing (Chinese pinyin input uses Enter to commit).
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      if (submit(input.value)) { input.value = ''; }
    }
  });

  function open() {
    isOpen = true;
    panel.hidden = false;
    launcher.hidden = true;
    unread = 0;
    badge.hidden = true;
    connect();
    scrollDown();
    input.focus();
  }

  function close() {
    if (pageMode) { return; }
    isOpen = false;
    panel.hidden = true;
    launcher.hidden = false;
    launcher.focus();
  }

  launcher.addEventListener('click', open);
  closeBtn.addEventListener('click', close);
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && isOpen) { close(); } });

  // ---- start --------------------------------------------------------------

  (function restore() {
    var saved;
    try { saved = JSON.parse(load(historyKey) || '[]'); } catch (e) { saved = []; }
    if (!Array.isArray(saved)) { saved = []; }
    history = saved.filter(function (h) { return h && typeof h.t === 'string'; }).slice(-HISTORY_MAX);
    if (history.length) { addMessage('sys', '以下为历史消息', false); }
    history.forEach(function (h) {
      if (h.k === 'bot') {
        if (h.id) { shown[h.id] = true; }
        addMessage('bot', h.t, !!h.m);
      } else {
        var m = addMessage('me', h.t, false);
        if (h.p && h.id) { meta(m, '发送中…'); pending.push({ id: h.id, text: h.t, el: m, sentOn: -1 }); }
        else { meta(m, '\u2713'); }
      }
    });
  })();

  // Leaving the page (or entering the back/forward cache) closes the
  // socket, so that the server buffers replies instead of writing to a
  // frozen page; coming back from the cache reconnects.
  window.addEventListener('pagehide', function () {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    clearInterval(pingTimer);
    ready = false;
    if (ws) {
      var sock = ws;
      ws = null;
      sock.onclose = null;
      try { sock.close(1000, 'page hidden'); } catch (e) { /* ignore */ }
    }
  });
  window.addEventListener('pageshow', function (e) {
    if (e.persisted && (isOpen || history.length || pending.length)) { connect(); }
  });

  function mount() {
    document.body.appendChild(root);
    if (pageMode) { open(); } else {
      panel.hidden = true;
      // A returning visitor connects at once to receive replies that came
      // while the page was closed; a new one when opening the chat.
      if (history.length) { connect(); }
    }
  }
  if (document.body) { mount(); } else { document.addEventListener('DOMContentLoaded', mount); }

  window.ZhiyinChat = {
    open: open,
    close: close,
    send: submit,
    visitor: function () { return visitor; },
    connected: function () { return ready; }
  };
})();
