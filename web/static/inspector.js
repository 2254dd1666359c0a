// Inspector view: reload when a new verdict arrives, so details render server-side, escaped.
"use strict";
(function () {
  const root = document.getElementById("inspector");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.events);
  source.addEventListener("verdict", function () {
    source.close();
    window.location.assign("/inspector");
  });
})();
