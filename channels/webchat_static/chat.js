// Switchboard web chat: one web socket, messages acknowledged by the server only
// once stored; unacknowledged messages are resent after a reconnect (the server
// de-duplicates them by id). No framework.
(function () {
  "use strict";
  const root = document.getElementById("chat");
  const bot = root.dataset.bot;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const statusEl = document.getElementById("status");
  const typingEl = document.getElementById("typing");
  const errorEl = document.getElementById("error");
  const sessionKey = "switchboard:" + bot + ":session";
  const pendingKey = "switchboard:" + bot + ":pending";
  const seen = new Map(); // message id -> element
  let pending = JSON.parse(localStorage.getItem(pendingKey) || "[]");
  let ws = null;
  let retry = 0;
  let typingTimer = null;

  function savePending() { localStorage.setItem(pendingKey, JSON.stringify(pending)); }
  function newId() {
    const a = new Uint8Array(12); crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function setStatus(text, online) { statusEl.textContent = text; statusEl.classList.toggle("online", !!online); }
  function showError(text) {
    errorEl.textContent = text; errorEl.hidden = !text;
    if (text) setTimeout(() => { if (errorEl.textContent === text) errorEl.hidden = true; }, 6000);
  }
  function scroll() { list.scrollTop = list.scrollHeight; }

  function render(m) {
    let li = seen.get(m.id);
    if (!li) {
      li = document.createElement("li");
      seen.set(m.id, li);
      list.appendChild(li);
    }
    li.className = "msg " + m.role + (m.pending ? " pending" : "");
    li.dataset.id = m.id;
    li.dataset.role = m.role;
    li.replaceChildren();
    if (m.role === "agent" || (m.role === "bot" && m.author)) {
      const who = document.createElement("span");
      who.className = "author";
      who.textContent = m.role === "agent" ? (m.author || "Agent") : m.author;
      li.appendChild(who);
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = m.text || "";
    li.appendChild(body);
    if (m.buttons && m.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const b of m.buttons) {
        const btn = document.createElement("button");
        btn.type = "button"; btn.textContent = b.title;
        btn.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => { x.disabled = true; });
          sendButton(b);
        });
        row.appendChild(btn);
      }
      li.appendChild(row);
    }
    scroll();
  }

  function transmit(p) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(p.frame));
  }
  function queue(frame, text) {
    const p = { frame, text };
    pending.push(p); savePending();
    render({ id: frame.id, role: "user", text, pending: true });
    transmit(p);
  }
  function sendText(text) { queue({ type: "message", id: newId(), text }, text); }
  function sendButton(b) { queue({ type: "button", id: newId(), payload: b.payload, title: b.title }, b.title); }

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        localStorage.setItem(sessionKey, f.session);
        setStatus("online", true);
        retry = 0;
        break;
      case "history":
        for (const m of f.messages) render(m);
        // whatever is still unacknowledged goes out again; the server de-duplicates
        for (const p of pending) { render({ id: p.frame.id, role: "user", text: p.text, pending: true }); transmit(p); }
        break;
      case "ack":
        pending = pending.filter((p) => p.frame.id !== f.id); savePending();
        if (seen.has(f.id)) seen.get(f.id).classList.remove("pending");
        break;
      case "message":
        typingEl.hidden = true;
        render(f);
        break;
      case "typing":
        typingEl.hidden = false; scroll();
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { typingEl.hidden = true; }, 8000);
        break;
      case "error":
        showError(f.message);
        if (f.code === "bad_message" || f.code === "too_large") { pending = []; savePending(); }
        break;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/chat/" + encodeURIComponent(bot) + "/ws");
    setStatus("connecting…", false);
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "hello", session: localStorage.getItem(sessionKey) }));
    });
    ws.addEventListener("message", (e) => {
      let f; try { f = JSON.parse(e.data); } catch (_) { return; }
      onFrame(f);
    });
    ws.addEventListener("close", () => {
      setStatus("reconnecting…", false);
      const delay = Math.min(10000, 500 * 2 ** retry++) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendText(text);
  });
  window.switchboardChat = { get socket() { return ws; } }; // for tests and embedding pages
  connect();
})();
