// Switchboard web chat launcher. Include it on any page:
//   <script src="https://YOUR-FARM/chat/BOT/widget.js" async></script>
// It adds a round button in the bottom-right corner that opens the chat in an iframe
// (the farm must list the page's origin in channels.webchat.allowed_origins).
// Optional attributes on the script tag: data-position="left", data-open="true".
(function () {
  "use strict";
  var BOT = {{BOT}};
  var LABEL = {{TITLE}};
  var script = document.currentScript;
  if (!script || window["switchboardWidget:" + BOT]) return;
  var origin = new URL(script.src, location.href).origin;
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";
  var prefix = "sb-" + BOT.replace(/[^A-Za-z0-9_-]/g, "") + "-";

  var style = document.createElement("style");
  style.textContent =
    "#" + prefix + "launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;width:56px;height:56px;" +
    "border-radius:50%;border:0;background:#1a5fd0;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);" +
    "display:flex;align-items:center;justify-content:center;padding:0}" +
    "#" + prefix + "launcher:focus-visible{outline:3px solid #b45309;outline-offset:3px}" +
    "#" + prefix + "frame{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483000;width:380px;height:600px;" +
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 108px);border:0;border-radius:12px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.3);background:#f5f6f8}" +
    "#" + prefix + "frame[hidden]{display:none}" +
    "@media (max-width:480px){#" + prefix + "frame{bottom:0;" + side + ":0;width:100vw;height:calc(100vh - 84px);" +
    "max-width:100vw;max-height:none;border-radius:0}}";
  document.head.appendChild(style);

  var button = document.createElement("button");
  button.id = prefix + "launcher";
  button.type = "button";
  button.setAttribute("aria-label", LABEL);
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", prefix + "frame");
  button.title = LABEL;
  button.innerHTML = '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="28" height="28">' +
    '<path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  var frame = null;
  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = prefix + "frame";
      frame.title = LABEL;
      frame.src = origin + "/chat/" + encodeURIComponent(BOT) + "?embed=1";
      frame.setAttribute("allow", "clipboard-write");
      document.body.appendChild(frame);
    }
    frame.hidden = false;
    button.setAttribute("aria-expanded", "true");
    frame.focus();
  }
  function close() {
    if (frame) frame.hidden = true;
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }
  button.addEventListener("click", function () {
    if (frame && !frame.hidden) close(); else open();
  });
  window.addEventListener("message", function (e) {
    if (e.origin === origin && e.data && e.data.switchboard === "close") close();
  });
  function mount() {
    document.body.appendChild(button);
    if (script.getAttribute("data-open") === "true") open();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window["switchboardWidget:" + BOT] = { open: open, close: close, get frame() { return frame; } };
})();
