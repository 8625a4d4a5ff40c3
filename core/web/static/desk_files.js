// Switchboard web desk: attachments. Shows the files of a transcript entry (images inline, other
// files as a link) and adds "Attach file…" to the composer: the chosen file goes to the customer
// with the reply box's text as its caption (a caption starting with "!" keeps it as an internal note).
(function () {
  "use strict";
  const MEDIA = new Set(["image", "sticker", "document", "video", "audio", "voice"]);

  function href(conversation, seq, index) {
    return "/desk/api/files/" + encodeURIComponent(conversation) + "/" + seq + "/" + index;
  }

  function size(bytes) {
    if (!bytes) return "";
    return bytes >= 1000000 ? " (" + (bytes / 1000000).toFixed(1) + " MB)" : " (" + Math.max(1, Math.floor(bytes / 1000)) + " kB)";
  }

  function render(m, conversation) {
    const box = document.createElement("div");
    box.className = "files";
    (m.attachments || []).forEach((a, index) => {
      const name = a.name || (a.kind === "image" ? "photo" : a.kind || "file");
      if (!MEDIA.has(a.kind) || m.seq === undefined || !conversation) {
        const span = document.createElement("span");
        span.className = "file";
        span.textContent = "[" + (a.kind || "file") + (a.name ? ": " + a.name : "") + "]";
        box.appendChild(span);
        return;
      }
      const url = href(conversation, m.seq, index);
      const link = document.createElement("a");
      link.href = url; link.target = "_blank"; link.rel = "noopener";
      if (a.kind === "image" || a.kind === "sticker") {
        const img = document.createElement("img");
        img.src = url; img.alt = (a.caption || name); img.loading = "lazy"; img.className = "thumb";
        link.appendChild(img);
      } else {
        link.className = "file";
        link.textContent = "📄 " + name + size(a.size);
      }
      box.appendChild(link);
    });
    return box;
  }

  window.deskFiles = { render };

  function install() {
    const buttons = document.querySelector("#composer .composer-buttons");
    if (!buttons || document.getElementById("file-input")) return;
    const input = document.createElement("input");
    input.type = "file"; input.id = "file-input"; input.hidden = true;
    input.accept = "image/png,image/jpeg,image/gif,image/webp,application/pdf";
    const label = document.createElement("label");
    label.htmlFor = "file-input"; label.className = "visually-hidden"; label.textContent = "File to send";
    const button = document.createElement("button");
    button.type = "button"; button.id = "btn-file"; button.textContent = "Attach file…";
    button.title = "Send a file to the customer (the text above becomes its caption)";
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      const conversation = document.getElementById("conversation").dataset.id;
      const error = document.getElementById("action-error");
      const text = document.getElementById("composer-text");
      input.value = "";
      if (!file || !conversation) return;
      error.hidden = true; error.textContent = "";
      button.disabled = true;
      try {
        const response = await fetch("/desk/api/files/" + encodeURIComponent(conversation), {
          method: "POST", credentials: "same-origin", body: file,
          headers: { "X-Desk-Request": "1", "X-File-Name": encodeURIComponent(file.name),
                     "X-Caption": encodeURIComponent(text.value) },
        });
        let data = {};
        try { data = await response.json(); } catch (e) { data = {}; }
        if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
        text.value = "";
        text.dispatchEvent(new Event("input"));
      } catch (err) {
        error.textContent = "File not sent: " + err.message;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    buttons.insertBefore(button, document.getElementById("btn-note"));
    buttons.append(input, label);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
  else install();
})();
