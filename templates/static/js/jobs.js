// Keeps a job page current: polls the job's JSON once a second until it is done or failed.
(function () {
  "use strict";
  var box = document.querySelector("[data-job-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-job-status-url");
  var bar = box.querySelector("progress");
  function field(name) { return box.querySelector('[data-job-field="' + name + '"]'); }
  function show(job) {
    field("status_label").textContent = job.status_label;
    field("message").textContent = job.message || "";
    if (job.percent === null) { bar.removeAttribute("value"); field("percent").textContent = ""; }
    else { bar.value = job.percent; bar.textContent = job.percent + " %"; field("percent").textContent = job.percent + " %"; }
    var err = field("error");
    err.hidden = !job.error; err.textContent = job.error || "";
    var dl = box.querySelector("[data-job-download]");
    if (job.download_url) { dl.hidden = false; }
    return job.status === "done" || job.status === "failed";
  }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (job) { if (!show(job)) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
}());
