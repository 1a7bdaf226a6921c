// The visitor's jobs as cards, pushed to the page (gr.HTML js_on_load: `element` is the list's
// block, `trigger` sends an event to Python). Python only renders the ids to follow,
// <ul class="dailies-jobs" data-ids="..." data-names="...">; each unfinished job gets one
// EventSource on GET /api/v1/jobs/{id}/events, fed by the app's one update loop, and its card is
// drawn from the status it sends (the prompt as text): progress and Cancel while it waits or
// runs, then its player, download, share page, "Use these settings" and Retry. Buttons go to
// Python as click events.
(window.dailies ||= {}).jobs = (element, trigger) => {
  const ENDED = ["succeeded", "failed", "canceled"];
  const latest = new Map(); // job id -> last status seen
  const sources = new Map(); // job id -> EventSource of a job still running or queued
  const rows = new Map(); // job id -> its <li> in the list shown now
  let shown = null; // the <ul> the rows were built for, and the ids it held then
  let shownIds = null;
  let names = {}; // backend name -> the name visitors read

  const detail = (s) => {
    const eta = s.eta_s === null ? "" : `, about ${Math.round(s.eta_s)} s left`;
    if (s.status === "queued") return (s.position ? `queued, ${s.position} ahead` : "queued, next to run") + eta;
    if (s.status === "running") return `running ${Math.round(s.progress * 100)}%, ${s.elapsed_s.toFixed(1)} s${eta}`;
    if (s.status === "succeeded") {
      const seed = s.result.seed === null ? "" : ` · seed ${s.result.seed}`;
      return `rendered in ${s.elapsed_s.toFixed(1)} s, waited ${s.waited_s.toFixed(1)} s in the queue${seed}`;
    }
    if (s.status === "failed") return `failed: ${s.error}`;
    return s.status;
  };

  const button = (action, id, text) => {
    const made = Object.assign(document.createElement("button"), { type: "button", textContent: text });
    Object.assign(made.dataset, { action, id });
    return made;
  };

  const link = (href, text, extra) => Object.assign(document.createElement("a"), { href, textContent: text, ...extra });

  // The card's player and buttons change only when its status does, so a playing video is left alone.
  const dress = (row, s) => {
    const actions = row.querySelector(".dailies-job-actions");
    const media = row.querySelector(".dailies-job-media");
    if (!ENDED.includes(s.status)) {
      actions.replaceChildren(button("cancel", s.id, "Cancel"));
      return;
    }
    actions.replaceChildren();
    if (s.status === "succeeded" && s.result) {
      const video = Object.assign(document.createElement("video"), {
        className: "dailies-job-video",
        controls: true,
        muted: true,
        loop: true,
        playsInline: true,
        preload: "metadata",
        poster: s.result.poster_url,
        src: s.result.video_url,
      });
      media.replaceChildren(video);
      actions.append(
        link(s.result.video_url, "Download", { download: `dailies-${s.id}.mp4` }),
        button("share", s.id, "Share"),
      );
    }
    actions.append(
      button("reuse", s.id, "Use these settings"),
      button("retry", s.id, s.status === "succeeded" ? "Again" : "Retry"),
    );
  };

  const draw = (s) => {
    const row = rows.get(s.id);
    if (!row) return;
    const changed = row.dataset.status !== s.status;
    row.dataset.status = s.status;
    row.querySelector("progress").value = s.progress;
    row.querySelector("progress").hidden = ENDED.includes(s.status);
    row.querySelector(".dailies-job-backend").textContent = names[s.backend] || s.backend;
    row.querySelector(".dailies-job-status").textContent = detail(s);
    row.querySelector(".dailies-job-prompt").textContent = s.request.prompt.slice(0, 200);
    if (changed) dress(row, s);
  };

  const follow = (id) => {
    if (sources.has(id) || ENDED.includes(latest.get(id)?.status)) return;
    const source = new EventSource(`/api/v1/jobs/${id}/events`);
    sources.set(id, source);
    source.addEventListener("status", (event) => {
      const s = JSON.parse(event.data);
      latest.set(id, s);
      draw(s);
      if (!ENDED.includes(s.status)) return;
      source.close(); // the stream ends with the job: do not let the browser reconnect
      sources.delete(id);
    });
    source.addEventListener("error", () => {
      // Reconnecting is the browser's job; a job that no longer exists answers 404 and stays closed.
      if (source.readyState === EventSource.CLOSED) sources.delete(id);
    });
  };

  const build = () => {
    const list = element.querySelector("ul.dailies-jobs");
    if (!list || (list === shown && list.dataset.ids === shownIds)) return;
    shown = list;
    shownIds = list.dataset.ids;
    list.replaceChildren();
    rows.clear();
    names = JSON.parse(list.dataset.names || "{}");
    for (const id of (shownIds || "").split(" ").filter(Boolean)) {
      const row = document.createElement("li");
      row.className = "dailies-job";
      row.dataset.id = id;
      row.dataset.status = "";
      row.innerHTML =
        '<div class="dailies-job-top"><strong class="dailies-job-backend"></strong> ' +
        '<span class="dailies-job-status"></span></div><progress max="1" value="0"></progress>' +
        '<div class="dailies-job-media"></div><span class="dailies-job-prompt"></span>' +
        '<div class="dailies-job-actions"></div>';
      list.append(row);
      rows.set(id, row);
      if (latest.has(id)) draw(latest.get(id));
      follow(id);
    }
  };

  // Share: the phone's share sheet where there is one, else the share page's address copied.
  const share = (target) => {
    const url = new URL(`/g/${target.dataset.id}`, location.href).href;
    const prompt = latest.get(target.dataset.id)?.request.prompt;
    if (navigator.share) return navigator.share({ url, title: prompt }).catch(() => {}); // dismissed
    navigator.clipboard?.writeText(url).then(
      () => { target.textContent = "Link copied"; },
      () => { window.open(url, "_blank", "noopener"); },
    );
  };

  // A card's button goes to Python with its action and job id (Share stays here); "Use these
  // settings" also brings the form it fills into view (on a phone it is above the cards).
  element.addEventListener("click", (e) => {
    const target = e.target instanceof Element && e.target.closest("button[data-action]");
    if (!target) return;
    if (target.dataset.action === "share") return share(target);
    trigger("click", { action: target.dataset.action, id: target.dataset.id });
    if (target.dataset.action === "reuse") document.getElementById("prompt")?.scrollIntoView({ block: "center" });
  });

  // Gradio may replace the list or only change its data-ids: either way the rows are built again.
  new MutationObserver(build).observe(element, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["data-ids"],
  });
  build();
};
