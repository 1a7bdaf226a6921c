// The visitor's jobs, pushed to the page (gr.HTML js_on_load: `element` is the list's block,
// `trigger` sends an event to Python). Python only renders the ids to follow,
// <ul class="dailies-jobs" data-ids="...">; each unfinished job gets one EventSource on
// GET /api/v1/jobs/{id}/events, fed by the app's one update loop, and its row is drawn from the
// status it sends (the prompt as text). A job that succeeds is sent to Python once, for its video.
const ENDED = ["succeeded", "failed", "canceled"];
const latest = new Map(); // job id -> last status seen
const sources = new Map(); // job id -> EventSource of a job still running or queued
const rows = new Map(); // job id -> its <li> in the list shown now
let shown = null; // the <ul> the rows were built for, and the ids it held then
let shownIds = null;

const detail = (s) => {
  if (s.status === "queued") return s.position ? `queued, ${s.position} ahead` : "queued, next to run";
  if (s.status === "running") {
    const eta = s.eta_s === null ? "" : `, about ${Math.round(s.eta_s)} s left`;
    return `running ${Math.round(s.progress * 100)}%, ${s.elapsed_s.toFixed(1)} s${eta}`;
  }
  if (s.status === "succeeded") return `done in ${s.elapsed_s.toFixed(1)} s, seed ${s.result.seed}`;
  if (s.status === "failed") return `failed: ${s.error}`;
  return s.status;
};

const draw = (s) => {
  const row = rows.get(s.id);
  if (!row) return;
  row.dataset.status = s.status;
  row.querySelector("progress").value = s.progress;
  row.querySelector(".dailies-job-status").textContent = detail(s);
  row.querySelector(".dailies-job-prompt").textContent = s.request.prompt.slice(0, 120);
};

const follow = (id) => {
  if (sources.has(id) || ENDED.includes(latest.get(id)?.status)) return;
  const source = new EventSource(`/api/v1/jobs/${id}/events`);
  sources.set(id, source);
  let watched = false; // seen unfinished here, so its success is news
  source.addEventListener("status", (event) => {
    const s = JSON.parse(event.data);
    latest.set(id, s);
    draw(s);
    if (!ENDED.includes(s.status)) {
      watched = true;
      return;
    }
    source.close(); // the stream ends with the job: do not let the browser reconnect
    sources.delete(id);
    if (s.status === "succeeded" && (watched || id === newest())) trigger("click", { id });
  });
  source.addEventListener("error", () => {
    // Reconnecting is the browser's job; a job that no longer exists answers 404 and stays closed.
    if (source.readyState === EventSource.CLOSED) sources.delete(id);
  });
};

const newest = () => [...rows.keys()][0];

const build = () => {
  const list = element.querySelector("ul.dailies-jobs");
  if (!list || (list === shown && list.dataset.ids === shownIds)) return;
  shown = list;
  shownIds = list.dataset.ids;
  list.replaceChildren();
  rows.clear();
  for (const id of (shownIds || "").split(" ").filter(Boolean)) {
    const row = document.createElement("li");
    row.className = "dailies-job";
    row.dataset.id = id;
    row.dataset.status = "";
    const bar = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    const status = Object.assign(document.createElement("span"), { className: "dailies-job-status" });
    const prompt = Object.assign(document.createElement("span"), { className: "dailies-job-prompt" });
    row.append(bar, " ", status, " ", prompt);
    list.append(row);
    rows.set(id, row);
    if (latest.has(id)) draw(latest.get(id));
    follow(id);
  }
};

// Gradio may replace the list or only change its data-ids: either way the rows are built again.
new MutationObserver(build).observe(element, {
  childList: true,
  subtree: true,
  attributes: true,
  attributeFilter: ["data-ids"],
});
build();
