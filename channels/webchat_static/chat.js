// Switchboard web chat: one web socket, messages acknowledged by the server only
// once stored; unacknowledged messages are resent after a reconnect (the server
// de-duplicates them by id). Labels come from the page's catalogue (chat-config),
// in the language the server picks. No framework.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const root = document.getElementById("chat");
  const bot = config.bot;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const fileInput = document.getElementById("file");
  const statusEl = document.getElementById("status");
  const typingEl = document.getElementById("typing");
  const typingText = document.getElementById("typing-text");
  const errorEl = document.getElementById("error");
  const sessionKey = "switchboard:" + bot + ":session";
  const pendingKey = "switchboard:" + bot + ":pending";
  const RANK = { pending: 0, sent: 1, delivered: 2, read: 3 };
  const seen = new Map(); // message id -> element
  const receipts = new Map(); // own message id -> status
  const thumbs = new Map(); // file id -> object URL
  let pending = JSON.parse(localStorage.getItem(pendingKey) || "[]");
  let ws = null;
  let retry = 0;
  let typingTimer = null;
  let language = config.language;
  let online = false;
  let chatState = { state: "bot" };
  if (config.embedded) document.body.classList.add("embedded");

  function t(key, values) {
    const words = config.labels[language] || config.labels[config.language] || {};
    let text = words[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  }
  function applyLanguage(lang) {
    if (!config.labels[lang]) return;
    language = lang;
    document.documentElement.lang = lang;
    root.setAttribute("aria-label", t("chat_with", { title: config.title }));
    input.placeholder = t("placeholder");
    document.getElementById("input-label").textContent = t("message_label");
    document.getElementById("send").textContent = t("send");
    document.getElementById("attach").title = t("attach");
    document.getElementById("attach-text").textContent = t("attach");
    renderStatus();
    for (const [id, li] of seen) {
      const time = li.querySelector("time");
      if (time) time.textContent = clock(time.dateTime);
      if (receipts.has(id)) paintReceipt(id);
    }
  }
  function savePending() { localStorage.setItem(pendingKey, JSON.stringify(pending)); }
  function newId() {
    const a = new Uint8Array(12); crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" }).format(d);
  }
  function renderStatus() {
    let text;
    if (!online) text = t(retry ? "reconnecting" : "connecting");
    else if (chatState.state === "waiting") {
      text = chatState.position ? t("waiting_position", { position: chatState.position }) : t("waiting");
      if (chatState.minutes) text += " (" + t("waiting_minutes", { minutes: chatState.minutes }) + ")";
    } else if (chatState.state === "agent") {
      text = chatState.agent ? t("with_agent", { name: chatState.agent }) : t("with_agent_unnamed");
    } else text = t("online");
    statusEl.textContent = text;
    statusEl.classList.toggle("online", online);
    root.dataset.state = online ? chatState.state : "offline";
  }
  function showError(text) {
    errorEl.textContent = text; errorEl.hidden = !text;
    if (text) setTimeout(() => { if (errorEl.textContent === text) errorEl.hidden = true; }, 6000);
  }
  function scroll() { list.scrollTop = list.scrollHeight; }
  function hideTyping() { typingEl.hidden = true; clearTimeout(typingTimer); }

  function paintReceipt(id) {
    const li = seen.get(id);
    const el = li && li.querySelector(".receipt");
    if (!el) return;
    let status = receipts.get(id) || "pending";
    el.dataset.status = status;
    el.textContent = li.dataset.queued === "1" && status !== "read" ? t("queued_for_agent") : t(status);
  }
  function setReceipt(id, status) {
    const before = receipts.get(id);
    if (before && RANK[before] >= RANK[status]) return;
    receipts.set(id, status);
    paintReceipt(id);
  }

  async function thumbnail(img, fileId) {
    if (thumbs.has(fileId)) { img.src = thumbs.get(fileId); return; }
    try {
      const r = await fetch("/chat/" + encodeURIComponent(bot) + "/files/" + encodeURIComponent(fileId),
                            { headers: { "X-Chat-Session": localStorage.getItem(sessionKey) || "" } });
      if (!r.ok) return;
      const url = URL.createObjectURL(await r.blob());
      thumbs.set(fileId, url); img.src = url;
    } catch (_) { /* the name stays visible */ }
  }

  function render(m) {
    let li = seen.get(m.id);
    if (!li) {
      li = document.createElement("li");
      seen.set(m.id, li);
      list.appendChild(li);
    }
    li.className = "msg " + m.role;
    li.dataset.id = m.id;
    li.dataset.role = m.role;
    li.replaceChildren();
    if (m.role === "agent" || (m.role === "bot" && m.author)) {
      const who = document.createElement("span");
      who.className = "author";
      who.textContent = m.role === "agent" ? (m.author || t("agent")) : m.author;
      li.appendChild(who);
    }
    if (m.text) {
      const body = document.createElement("span");
      body.className = "text";
      body.textContent = m.text;
      li.appendChild(body);
    }
    if (m.attachments && m.attachments.length) {
      const box = document.createElement("div");
      box.className = "attachments";
      for (const a of m.attachments) {
        if (a.kind === "image" && (a.id || a.url)) {
          const img = document.createElement("img");
          img.alt = a.name || t("attachment");
          box.appendChild(img);
          if (a.id) thumbnail(img, a.id); else img.src = a.url;
        } else if (a.url) {
          const link = document.createElement("a");
          link.className = "file"; link.href = a.url; link.target = "_blank"; link.rel = "noopener";
          link.textContent = a.name || t("attachment");
          box.appendChild(link);
        } else if (a.id && m.role !== "user") {
          // An agent's file: fetched with the session header (like thumbnails), then saved.
          const link = document.createElement("a");
          link.className = "file"; link.href = "#"; link.download = a.name || "file";
          link.textContent = "📄 " + (a.name || t("attachment"));
          link.addEventListener("click", async (event) => {
            if (link.dataset.ready) return;
            event.preventDefault();
            await thumbnail(link, a.id);
            if (link.src) { link.href = link.src; link.dataset.ready = "1"; link.click(); }
          });
          box.appendChild(link);
        } else {
          const span = document.createElement("span");
          span.className = "file";
          span.textContent = "📄 " + (a.name || t("attachment"));
          box.appendChild(span);
        }
      }
      li.appendChild(box);
    }
    if (m.buttons && m.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", t("quick_replies"));
      for (const b of m.buttons) {
        const btn = document.createElement("button");
        btn.type = "button"; btn.textContent = b.title;
        btn.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => { x.disabled = true; });
          sendButton(b);
          input.focus();
        });
        row.appendChild(btn);
      }
      li.appendChild(row);
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const time = document.createElement("time");
    time.dateTime = m.ts || new Date().toISOString();
    time.textContent = clock(time.dateTime);
    meta.appendChild(time);
    if (m.role === "user") {
      const receipt = document.createElement("span");
      receipt.className = "receipt";
      meta.appendChild(receipt);
      if (m.pending) receipts.set(m.id, receipts.get(m.id) || "pending");
      else if (!receipts.has(m.id) || RANK[receipts.get(m.id)] < RANK.sent) receipts.set(m.id, "sent");
    }
    li.appendChild(meta);
    if (m.role === "user") paintReceipt(m.id);
    scroll();
  }

  function transmit(p) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(p.frame));
  }
  function queue(frame, text, attachments) {
    const p = { frame, text, attachments: attachments || [] };
    pending.push(p); savePending();
    render({ id: frame.id, role: "user", text, attachments: p.attachments, pending: true });
    transmit(p);
  }
  function sendText(text) { queue({ type: "message", id: newId(), text }, text); }
  function sendButton(b) { queue({ type: "button", id: newId(), payload: b.payload, title: b.title }, b.title); }

  async function upload(file) {
    if (file.size > config.maxUploadBytes) { showError(t("error_upload_size", { max: config.maxUploadText })); return; }
    let r;
    try {
      r = await fetch("/chat/" + encodeURIComponent(bot) + "/upload", {
        method: "POST", body: file,
        headers: { "X-Chat-Session": localStorage.getItem(sessionKey) || "", "X-File-Name": encodeURIComponent(file.name || "") },
      });
    } catch (_) { showError(t("error_upload")); return; }
    if (r.status === 415) { showError(t("error_upload_type")); return; }
    if (r.status === 413) { showError(t("error_upload_size", { max: config.maxUploadText })); return; }
    if (r.status === 429) { showError(t("error_slow_down")); return; }
    if (!r.ok) { showError(t("error_upload")); return; }
    const stored = await r.json();
    thumbs.set(stored.id, URL.createObjectURL(file));
    const caption = input.value.trim();
    input.value = "";
    const a = { kind: stored.kind, id: stored.id, mime_type: stored.mime_type, name: stored.name };
    queue({ type: "message", id: newId(), text: caption, attachments: [stored.id] }, caption, [a]);
  }

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        localStorage.setItem(sessionKey, f.session);
        online = true; retry = 0;
        if (f.language) applyLanguage(f.language);
        renderStatus();
        break;
      case "history":
        for (const m of f.messages) render(m);
        // whatever is still unacknowledged goes out again; the server de-duplicates
        for (const p of pending) {
          render({ id: p.frame.id, role: "user", text: p.text, attachments: p.attachments, pending: true });
          transmit(p);
        }
        break;
      case "ack":
        pending = pending.filter((p) => p.frame.id !== f.id); savePending();
        if (f.waiting && seen.has(f.id)) seen.get(f.id).dataset.queued = "1";
        setReceipt(f.id, "sent");
        break;
      case "receipts":
        for (const [id, status] of Object.entries(f.messages)) setReceipt(id, status);
        break;
      case "state":
        chatState = f;
        if (f.state !== "bot") hideTyping();
        renderStatus();
        break;
      case "language":
        applyLanguage(f.language);
        break;
      case "message":
        // The id is the reply's outbox item: one sent again (its farm process died between
        // sending and recording it, or another process's sync pushed it too) is shown once.
        if (seen.has(f.id)) break;
        hideTyping();
        render(f);
        break;
      case "typing":
        typingText.textContent = f.who === "agent" ? t("typing_agent", { name: f.name || t("agent") }) : t("typing_bot");
        typingText.classList.toggle("visually-hidden", f.who !== "agent");  // "Anna is typing…" is shown; the bot's dots speak for themselves
        typingEl.hidden = false; scroll();
        clearTimeout(typingTimer);
        typingTimer = setTimeout(hideTyping, 8000);
        break;
      case "error":
        showError(f.code === "slow_down" ? t("error_slow_down") : (f.message || t("error_generic")));
        if (f.code === "bad_message" || f.code === "too_large") { pending = []; savePending(); }
        break;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/chat/" + encodeURIComponent(bot) + "/ws");
    online = false; renderStatus();
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "hello", session: localStorage.getItem(sessionKey), watch: true,
                               languages: Array.from(navigator.languages || [navigator.language]) }));
    });
    ws.addEventListener("message", (e) => {
      let f; try { f = JSON.parse(e.data); } catch (_) { return; }
      onFrame(f);
    });
    ws.addEventListener("close", () => {
      online = false; hideTyping(); retry++; renderStatus();
      const delay = Math.min(10000, 500 * 2 ** (retry - 1)) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  // The customer typing: at most one signal every 3 s, only while a person answers (the desk shows it).
  let lastTyping = 0;
  input.addEventListener("input", () => {
    const now = Date.now();
    if (!input.value.trim() || !chatState || chatState.state !== "agent" || now - lastTyping < 3000) return;
    if (ws && ws.readyState === WebSocket.OPEN) { lastTyping = now; ws.send(JSON.stringify({ type: "typing" })); }
  });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendText(text);
  });
  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file) upload(file);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && window.parent !== window) window.parent.postMessage({ switchboard: "close" }, "*");
  });
  window.switchboardChat = { get socket() { return ws; }, get state() { return chatState; } }; // tests, embedding
  connect();
})();
