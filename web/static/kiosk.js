// Kiosk screen: shows one verdict panel per Server-Sent Event, then returns to rest: the
// idle prompt, or the out-of-service panel while the kiosk cannot verify (polled from
// /kiosk/health, and asked at once when the live stream drops).
// An mDL (a phone's mdoc: QR) first shows its session's steps, "connecting" and "approve",
// then its verdict; a step left without a verdict gives way after the session's maximum.
// Text from events is set with textContent only: never parsed as HTML.
"use strict";
(function () {
  const body = document.body;
  const idleAfterMs = Math.max(1, parseFloat(body.dataset.idleAfterS || "6")) * 1000;
  const healthEveryMs = Math.max(0.05, parseFloat(body.dataset.healthEveryS || "5")) * 1000;
  const sessionMaxMs = (Math.max(1, parseFloat(body.dataset.sessionMaxS || "90")) + 10) * 1000;
  const screen = document.getElementById("screen");
  const linkState = document.getElementById("link-state");
  const outReason = document.getElementById("out-reason");
  const panels = {};
  for (const p of document.querySelectorAll(".panel")) panels[p.dataset.state] = p;
  let idleTimer = null;
  let fault = body.dataset.state === "out";  // the server rendered the page out of service

  function show(state) {
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== state;
    screen.className = "screen state-" + state;
    body.dataset.state = state;
  }

  // Idle means "show your code": never while the kiosk cannot verify.
  function rest() { show(fault ? "out" : "idle"); }

  function setFault(text) {
    fault = !!text;
    if (fault) outReason.textContent = text;
    if (!idleTimer) rest();  // a verdict on screen keeps its time, then gives way
  }

  function askHealth() {
    return fetch(body.dataset.health, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (h) { setFault(h.fault ? h.text : null); })
      .catch(function () { setFault(outReason.dataset.lost); });
  }

  function pollHealth() {
    askHealth().finally(function () { setTimeout(pollHealth, healthEveryMs); });
  }

  function fill(panel, field, value) {
    const el = panel.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = value || "";
    return el;
  }

  function onVerdict(view) {
    const panel = panels[view.outcome] ? panels[view.outcome] : panels.unverifiable;
    fill(panel, "reason", view.reason);
    fill(panel, "retry", view.retry);
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
      idleTimer = null;
      rest();
      for (const p of Object.values(panels)) {
        const img = p.querySelector('[data-field="photo"]');
        if (img) { img.removeAttribute("src"); img.hidden = true; }
        for (const el of p.querySelectorAll("[data-field]")) if (el.tagName !== "IMG" && el.dataset.field !== "holder") el.textContent = "";
      }
    }, idleAfterMs);
  }

  function onStep(step) {
    if (fault || !panels[step.state] || !panels[step.state].classList.contains("mdoc")) return;
    show(step.state);
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(function () { idleTimer = null; rest(); }, sessionMaxMs);
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
    source.addEventListener("mdoc", function (msg) {
      try { onStep(JSON.parse(msg.data)); } catch (e) { /* ignore a bad event */ }
    });
    source.addEventListener("error", function () {
      linkState.textContent = linkState.dataset.lost;
      body.dataset.connected = "no";
      askHealth();  // a dropped stream may mean a stopped web process or kiosk
    });
  }

  rest();
  connect();
  setTimeout(pollHealth, healthEveryMs);
})();
