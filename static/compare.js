// Videos side by side, played as one: any `.dailies-compare` block (the /c/ share page, the
// page's compare view, present now or added later) gets one play/pause and one scrub bar for
// all its videos. The longest video is the clock; the others follow it within 50 ms and wait
// on their last frame when they are shorter. Listeners sit on the document (media events are
// caught on the way down), so blocks that Gradio renders later need no setup.
(() => {
  if (window.dailiesCompare) return;
  window.dailiesCompare = true;
  const DRIFT_S = 0.05;
  const still = window.matchMedia("(prefers-reduced-motion: reduce)");
  const videos = (block) => [...block.querySelectorAll("video.dailies-compare-video")];
  const clock = (block) =>
    videos(block).reduce((a, b) => ((b.duration || 0) > (a.duration || 0) ? b : a), videos(block)[0]);
  const target = (video, t) => Math.min(t, Math.max((video.duration || t) - 0.01, 0));
  const playing = new Set();

  const show = (block) => {
    const lead = clock(block);
    if (!lead) return;
    const scrub = block.querySelector(".dailies-compare-scrub");
    const time = block.querySelector(".dailies-compare-time");
    const button = block.querySelector(".dailies-compare-play");
    if (scrub && lead.duration) {
      scrub.max = lead.duration.toFixed(3);
      scrub.value = lead.currentTime.toFixed(3);
    }
    if (time) time.textContent = `${lead.currentTime.toFixed(1)} / ${(lead.duration || 0).toFixed(1)} s`;
    if (button) {
      const on = playing.has(block);
      button.textContent = on ? "Pause" : "Play";
      button.setAttribute("aria-pressed", String(on));
    }
  };

  const follow = (block) => {
    const lead = clock(block);
    for (const video of videos(block)) {
      if (video === lead || video.seeking) continue;
      const want = target(video, lead.currentTime);
      if (Math.abs(video.currentTime - want) > DRIFT_S) video.currentTime = want;
    }
    show(block);
  };

  const tick = () => {
    for (const block of playing) {
      if (!block.isConnected) playing.delete(block);
      else follow(block);
    }
    if (playing.size) requestAnimationFrame(tick);
  };

  const play = (block) => {
    const lead = clock(block);
    for (const video of videos(block)) {
      video.currentTime = target(video, lead.currentTime);
      video.play().catch(() => {});
    }
    if (!playing.size) requestAnimationFrame(tick);
    playing.add(block);
    show(block);
  };

  const pause = (block) => {
    playing.delete(block);
    for (const video of videos(block)) video.pause();
    follow(block);
  };

  const seek = (block, t) => {
    for (const video of videos(block)) video.currentTime = target(video, t);
    show(block);
  };

  document.addEventListener("click", (e) => {
    const button = e.target instanceof Element && e.target.closest(".dailies-compare-play");
    const block = button && button.closest(".dailies-compare");
    if (block) (playing.has(block) ? pause : play)(block);
  });
  document.addEventListener("input", (e) => {
    const block = e.target instanceof Element && e.target.matches(".dailies-compare-scrub") && e.target.closest(".dailies-compare");
    if (block) seek(block, Number(e.target.value));
  });
  // The clock ran out: all go back to the start (one loop for the whole block) and play again
  // together once each has its frame there: on a slow machine a seek takes a while, and the clock
  // would run on alone.
  document.addEventListener(
    "ended",
    (e) => {
      const block = e.target instanceof HTMLVideoElement && e.target.closest(".dailies-compare");
      if (block && playing.has(block) && e.target === clock(block)) {
        for (const video of videos(block)) video.pause();
        block.dataset.restarting = "1";
        seek(block, 0);
      }
    },
    true,
  );
  const resume = (block) => {
    if (block.dataset.restarting && videos(block).every((v) => !v.seeking && v.readyState >= 2)) {
      delete block.dataset.restarting;
      if (playing.has(block)) play(block);
    }
  };
  for (const type of ["seeked", "canplay"]) {
    document.addEventListener(
      type,
      (e) => {
        const block = e.target instanceof HTMLVideoElement && e.target.closest(".dailies-compare");
        if (block) resume(block);
      },
      true,
    );
  }
  // Once every video has a frame, start them together, unless the visitor asked for less motion.
  const ready = (block) => {
    show(block);
    const loaded = videos(block).every((v) => v.readyState >= 2);
    if (loaded && !still.matches && block.dataset.autoplay !== "off" && !block.dataset.started) {
      block.dataset.started = "1";
      play(block);
    }
  };
  document.addEventListener(
    "loadeddata",
    (e) => {
      const block = e.target instanceof HTMLVideoElement && e.target.closest(".dailies-compare");
      if (block) ready(block);
    },
    true,
  );
  // Videos that loaded before this script ran fired their event unseen.
  for (const block of document.querySelectorAll(".dailies-compare")) ready(block);
})();
