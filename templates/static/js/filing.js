/* Filing pages: drag and drop, upload progress, artifact suggestions and an accessible
   artifact combobox. Everything works without this script (plain form posts and the
   <select>); the script only makes it quicker. No inline code: CSP forbids it. */
(function () {
  "use strict";

  function initUpload(root) {
    var form = root.querySelector("#upload-form");
    if (!form || form.dataset.enhanced) { return; }
    form.dataset.enhanced = "1";
    var input = form.querySelector("#files");
    var zone = form.querySelector("#dropzone");
    var list = form.querySelector("#chosen");
    var progress = form.querySelector("#upload-progress");
    var status = form.querySelector("#upload-status");
    var wrap = form.querySelector("#upload-status-wrap");

    function showChosen() {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (f) {
        var li = document.createElement("li");
        li.textContent = f.name + " (" + Math.max(1, Math.round(f.size / 1024)) + " KB)";
        list.appendChild(li);
      });
    }
    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!e.dataTransfer || !e.dataTransfer.files.length) { return; }
      var dt = new DataTransfer();
      Array.prototype.forEach.call(input.files, function (f) { dt.items.add(f); });
      Array.prototype.forEach.call(e.dataTransfer.files, function (f) { dt.items.add(f); });
      input.files = dt.files;
      showChosen();
    });

    form.addEventListener("submit", function (e) {
      if (!window.XMLHttpRequest || !input.files.length) { return; }
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.responseType = "document";
      wrap.hidden = false;
      progress.value = 0;
      status.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          progress.value = Math.round(ev.loaded * 100 / ev.total);
          progress.textContent = progress.value + "%";
          status.textContent = progress.value + "% sent";
        }
      });
      xhr.upload.addEventListener("load", function () {
        progress.value = 100;
        status.textContent = "Checking the files…";
      });
      xhr.addEventListener("load", function () { swapPage(xhr.response); });
      xhr.addEventListener("error", function () {
        status.textContent = "The upload failed: the server could not be reached. Nothing was filed; try again.";
      });
      xhr.send(new FormData(form));
    });
  }

  function swapPage(doc) {
    if (!doc || !doc.querySelector("main")) { window.location.reload(); return; }
    var main = document.querySelector("main");
    main.innerHTML = doc.querySelector("main").innerHTML;
    document.title = doc.title;
    main.focus();
    init(main);
  }

  function dateLabelFor(select) {
    return document.getElementById(select.dataset.dateLabel) ||
      document.getElementById(select.id.replace(/artifact$/, "") + "document_date-label") ||
      document.getElementById("artifact-date-label");
  }

  function syncDateLabel(select) {
    var option = select.options[select.selectedIndex];
    var label = dateLabelFor(select);
    if (label) {
      label.textContent = option && option.dataset.dating ? option.dataset.dating : "Document date";
    }
  }

  function chooseArtifact(select, uid) {
    select.value = uid;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function initRows(root) {
    Array.prototype.forEach.call(root.querySelectorAll("select.artifact-select"), function (select) {
      if (select.dataset.enhanced) { return; }
      select.dataset.enhanced = "1";
      select.addEventListener("change", function () {
        syncDateLabel(select);
        var row = select.closest("fieldset");
        if (!row) { return; }
        Array.prototype.forEach.call(row.querySelectorAll("button.suggestion"), function (b) {
          b.setAttribute("aria-pressed", b.dataset.artifact === select.value ? "true" : "false");
        });
      });
      if (select.value) { syncDateLabel(select); }
      addCombobox(select);
    });
    Array.prototype.forEach.call(root.querySelectorAll("button.suggestion"), function (button) {
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        var select = document.getElementById(button.dataset.target);
        if (select) { chooseArtifact(select, button.dataset.artifact); }
      });
    });
  }

  var comboCount = 0;

  function addCombobox(select) {
    var holder = document.querySelector("[data-artifacts-url]");
    if (!holder) { return; }
    var url = holder.dataset.artifactsUrl;
    comboCount += 1;
    var id = "artifact-combo-" + comboCount;
    var wrap = document.createElement("div");
    wrap.className = "combo";
    var label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = "Find an artifact (name, number, sub-artifact or definition)";
    var input = document.createElement("input");
    input.type = "text";
    input.id = id;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id + "-list");
    input.autocomplete = "off";
    var listbox = document.createElement("ul");
    listbox.id = id + "-list";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", "Matching artifacts");
    listbox.hidden = true;
    wrap.appendChild(label);
    wrap.appendChild(input);
    wrap.appendChild(listbox);
    select.parentNode.insertBefore(wrap, select.parentNode.firstChild);
    var active = -1;
    var timer = null;

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function options() { return listbox.querySelectorAll("[role=option]"); }
    function highlight(index) {
      var opts = options();
      if (!opts.length) { return; }
      active = (index + opts.length) % opts.length;
      Array.prototype.forEach.call(opts, function (o, i) { o.setAttribute("aria-selected", i === active ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", opts[active].id);
      opts[active].scrollIntoView({ block: "nearest" });
    }
    function pick(option) {
      chooseArtifact(select, option.dataset.uid);
      input.value = option.textContent;
      close();
    }
    function render(items) {
      listbox.textContent = "";
      items.forEach(function (item, i) {
        var li = document.createElement("li");
        li.id = id + "-opt-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.uid = item.unique_id;
        li.textContent = item.label + (item.matched !== "name" && item.matched !== "number" ? " — " + item.matched + ": " + item.matched_text.slice(0, 60) : "");
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(li); });
        listbox.appendChild(li);
      });
      listbox.hidden = !items.length;
      input.setAttribute("aria-expanded", items.length ? "true" : "false");
      active = -1;
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { close(); return; }
      timer = setTimeout(function () {
        fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(render)
          .catch(function () { close(); });
      }, 150);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { e.preventDefault(); if (listbox.hidden) { return; } highlight(active + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlight(active - 1); }
      else if (e.key === "Enter") {
        if (!listbox.hidden && active >= 0) { e.preventDefault(); pick(options()[active]); }
      } else if (e.key === "Escape") { close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function init(root) {
    initUpload(root);
    initRows(root);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})();
