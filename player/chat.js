// The player page's chat: the stream's room at /live/STREAM/chat on the
// server that served the page (an edge; the origin has no chat), beside the
// video. A chat token comes as ?chat=TOKEN (`livecdn token STREAM
// --chat-user ID --name NAME`); without one the room is read-only, where
// the edge allows reading without a token. Reconnects with a capped
// backoff; on rejoining, the history replaces what is shown, so nothing is
// shown twice. Schema: shared/src/chat.rs.
(function () {
  'use strict';

  var TOKEN = new URLSearchParams(location.search).get('chat');
  var SHOWN = 200;
  var $ = function (id) { return document.getElementById(id); };
  var log = $('chat-log');
  var form = $('chat-form');
  var input = $('chat-text');
  var status = $('chat-status');
  var state = {
    stream: null,
    ws: null,
    joined: false,
    me: null,
    viewers: null,
    messages: [],
    errors: [],
    closes: [],
    backoff: 500,
  };

  function setStatus(text) { status.textContent = text; }

  function render() {
    log.textContent = '';
    state.messages.slice(-SHOWN).forEach(function (m) {
      var li = document.createElement('li');
      li.dataset.id = m.id;
      var who = document.createElement('b');
      who.textContent = m.name + (m.role === 'moderator' ? ' (mod)' : '');
      who.title = m.user;
      li.appendChild(who);
      li.appendChild(document.createTextNode(' ' + m.text));
      log.appendChild(li);
    });
    log.scrollTop = log.scrollHeight;
  }

  function onEvent(e) {
    switch (e.type) {
      case 'join':
        state.joined = true;
        state.me = e.you;
        state.viewers = e.viewers;
        state.messages = e.history.slice();
        state.backoff = 500;
        form.hidden = !e.you;
        setStatus((e.you ? 'chatting as ' + e.you.name : 'read-only (no chat token)') + ' · ' + e.viewers + ' watching');
        render();
        break;
      case 'message':
        state.messages.push(e);
        if (state.messages.length > SHOWN * 2) state.messages = state.messages.slice(-SHOWN);
        render();
        break;
      case 'delete':
        state.messages = state.messages.filter(function (m) { return m.id !== e.id; });
        render();
        break;
      case 'viewer-count':
        state.viewers = e.count;
        setStatus((state.me ? 'chatting as ' + state.me.name : 'read-only') + ' · ' + e.count + ' watching');
        break;
      case 'error':
        state.errors.push(e.code);
        setStatus('not sent: ' + e.message);
        break;
      default:
        break; // ban, unban and what later versions add
    }
  }

  function connect() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var url = scheme + '//' + location.host + '/live/' + encodeURIComponent(state.stream) + '/chat' +
      (TOKEN ? '?token=' + encodeURIComponent(TOKEN) : '');
    var ws = new WebSocket(url);
    state.ws = ws;
    state.joined = false;
    setStatus('connecting…');
    ws.onmessage = function (m) {
      try { onEvent(JSON.parse(m.data)); } catch (err) { state.errors.push('bad event'); }
    };
    ws.onclose = function (c) {
      state.closes.push(c.code);
      state.joined = false;
      form.hidden = true;
      // Refusals (4401 token, 4403 forbidden) will not change on retry.
      if (c.code === 4401 || c.code === 4403) { setStatus('chat refused: ' + (c.reason || c.code)); return; }
      setStatus('chat disconnected' + (c.reason ? ': ' + c.reason : '') + ', reconnecting…');
      setTimeout(connect, state.backoff);
      state.backoff = Math.min(state.backoff * 2, 10000);
    };
  }

  function send(text) {
    if (!state.ws || !state.joined || !state.me || !text.trim()) return false;
    state.ws.send(JSON.stringify({ type: 'message', text: text }));
    return true;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (send(input.value)) input.value = '';
  });

  // The stream is chosen by the page's own logic (?stream=, or the first
  // live one): wait for it.
  (function waitForStream() {
    var s = window.livecdn && window.livecdn.stream && window.livecdn.stream();
    if (!s) { setTimeout(waitForStream, 250); return; }
    state.stream = s;
    connect();
  })();

  window.livecdnChat = {
    send: send,
    state: function () {
      return {
        stream: state.stream,
        joined: state.joined,
        me: state.me,
        viewers: state.viewers,
        messages: state.messages.map(function (m) { return { id: m.id, user: m.user, text: m.text }; }),
        errors: state.errors.slice(),
        closes: state.closes.slice(),
      };
    },
  };
})();
