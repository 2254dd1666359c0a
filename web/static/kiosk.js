// Kiosk screen: shows one verdict panel per Server-Sent Event, then returns to idle.
// Text from events is set with textContent only: never parsed as HTML.
"use strict";
(function () {
  const body = document.body;
  const idleAfterMs = Math.max(1, parseFloat(body.dataset.idleAfterS || "6")) * 1000;
  const screen = document.getElementById("screen");
  const linkState = document.getElementById("link-state");
  const panels = {};
  for (const p of document.querySelectorAll(".panel")) panels[p.dataset.state] = p;
  let idleTimer = null;

  function show(state) {
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== state;
    screen.className = "screen state-" + state;
    body.dataset.state = state;
  }

  function fill(panel, field, value) {
    const el = panel.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = value || "";
    return el;
  }

  function onVerdict(view) {
    const panel = panels[view.outcome] ? panels[view.outcome] : panels.unverifiable;
    fill(panel, "reason", view.reason);
    fill(panel, "code", view.code);
    const holderBox = panel.querySelector('[data-field="holder"]');
    if (holderBox) {
      const h = view.holder;
      holderBox.hidden = !h;
      if (h) {
        for (const f of ["name", "name_latin", "type", "classes", "valid_until"]) fill(panel, f, h[f]);
        const img = panel.querySelector('[data-field="photo"]');
        if (img) {
          if (h.photo && h.photo.startsWith("data:image/")) { img.src = h.photo; img.hidden = false; }
          else { img.removeAttribute("src"); img.hidden = true; }
        }
      }
    }
    body.dataset.verdictId = view.id || "";
    show(panel.dataset.state);
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(function () {
      show("idle");
      for (const p of Object.values(panels)) {
        const img = p.querySelector('[data-field="photo"]');
        if (img) { img.removeAttribute("src"); img.hidden = true; }
        for (const el of p.querySelectorAll("[data-field]")) if (el.tagName !== "IMG" && el.dataset.field !== "holder") el.textContent = "";
      }
    }, idleAfterMs);
  }

  function connect() {
    const source = new EventSource(body.dataset.events);
    source.addEventListener("open", function () {
      linkState.textContent = "";
      body.dataset.connected = "yes";
    });
    source.addEventListener("verdict", function (msg) {
      try { onVerdict(JSON.parse(msg.data)); } catch (e) { /* ignore a bad event */ }
    });
    source.addEventListener("error", function () {
      linkState.textContent = linkState.dataset.lost;
      body.dataset.connected = "no";
    });
  }

  show("idle");
  connect();
})();
