// Inspector view: reload when a new verdict arrives, so details render server-side, escaped;
// an mDL session's steps show in a status line until then.
"use strict";
(function () {
  const root = document.getElementById("inspector");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.events);
  source.addEventListener("open", function () { root.dataset.connected = "yes"; });
  // An mDL session's steps ("connecting", "approve") before its verdict arrives.
  const step = document.getElementById("mdoc-step");
  source.addEventListener("mdoc", function (msg) {
    let state = null;
    try { state = JSON.parse(msg.data).state; } catch (e) { return; }
    const text = step && (state === "connecting" || state === "approve") ? step.dataset[state] : null;
    if (text) { step.textContent = text; step.hidden = false; }
  });
  source.addEventListener("verdict", function () {
    source.close();
    window.location.assign("/inspector");
  });
})();
