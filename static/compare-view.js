// The compare view on the Generate tab (gr.HTML js_on_load: `element` is the view, `trigger`
// sends an event to Python). Pushed, like the job cards: each column still rendering follows
// its job's event stream and shows its progress; when one ends the view asks Python once to
// draw it again (its video). Playing the videos in step is static/compare.js's.
(window.dailies ||= {}).compareView = (element, trigger) => {
  const ENDED = ["succeeded", "failed", "canceled"];
  const followed = new Set();
  // A link to a comparison (?c=): on a phone the view sits under the form, so bring it up once drawn.
  let linked = new URLSearchParams(location.search).has("c");
  const follow = () => {
    const block = linked && element.querySelector(".dailies-compare");
    if (block) {
      linked = false;
      block.scrollIntoView({ block: "center", behavior: "instant" });
    }
    for (const column of element.querySelectorAll(".share-column[data-id]")) {
      const id = column.dataset.id;
      if (ENDED.includes(column.dataset.status) || followed.has(id)) continue;
      followed.add(id);
      const source = new EventSource(`/api/v1/jobs/${id}/events`);
      source.addEventListener("status", (event) => {
        const s = JSON.parse(event.data);
        const pending = element.querySelector(`.share-column[data-id="${id}"] .share-pending`);
        if (pending && s.status === "running") pending.textContent = `rendering, ${Math.round(s.progress * 100)}%`;
        if (!ENDED.includes(s.status)) return;
        source.close();
        trigger("click");
      });
    }
  };
  new MutationObserver(follow).observe(element, { childList: true, subtree: true });
  follow();
};
