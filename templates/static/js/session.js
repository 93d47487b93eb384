// Warn a minute before the server ends an inactive session (ACC-7), and let the person
// stay signed in. The server decides; this only tells. Keyboard usable, announced politely.
(function () {
  "use strict";
  var script = document.currentScript;
  var minutes = parseInt(script && script.getAttribute("data-timeout-minutes"), 10);
  var keepalive = script && script.getAttribute("data-keepalive");
  if (!minutes || !keepalive) { return; }
  // The server counts from its activity mark, renewed at most once a minute: it says how
  // many seconds are left at this page.
  var left = parseInt(script.getAttribute("data-seconds-left"), 10);
  var warnAfter = Math.max((isNaN(left) ? minutes * 60 : left) - 60, 5) * 1000;
  var timer = null;

  function notice() {
    var box = document.getElementById("session-warning");
    if (box) { return box; }
    box = document.createElement("div");
    box.id = "session-warning";
    box.className = "flash flash-info";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    box.hidden = true;
    var text = document.createElement("p");
    text.textContent = "You will be signed out in one minute because of inactivity.";
    var stay = document.createElement("button");
    stay.type = "button";
    stay.className = "primary";
    stay.textContent = "Stay signed in";
    stay.addEventListener("click", function () {
      fetch(keepalive, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) { window.location.reload(); return; }
          warnAfter = Math.max(body.seconds_left - 60, 5) * 1000;
          hide(); start();
        });
    });
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", hide);
    box.appendChild(text);
    box.appendChild(stay);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(dismiss);
    box.addEventListener("keydown", function (e) { if (e.key === "Escape") { hide(); } });
    var main = document.getElementById("main") || document.body;
    main.insertBefore(box, main.firstChild);
    return box;
  }
  function hide() { var box = document.getElementById("session-warning"); if (box) { box.hidden = true; } }
  function show() {
    var box = notice();
    box.hidden = false;
    box.querySelector("button").focus();
  }
  function start() { if (timer) { clearTimeout(timer); } timer = setTimeout(show, warnAfter); }
  start();
})();
