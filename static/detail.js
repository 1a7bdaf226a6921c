// The gallery's detail view (gr.HTML js_on_load: `element` is the component).
(() => {
  const dailies = (window.dailies ||= {});

  // The player (redrawn per generation). Players start muted, as browsers only autoplay muted
  // video; a video with sound has an unmute button, kept in step with the player's own controls.
  // Visitors who asked for less motion get the player paused until they press play.
  dailies.player = (element) => {
    const label = (video, button) => {
      button.textContent = video.muted ? "🔇 Unmute" : "🔊 Mute";
      button.setAttribute("aria-pressed", String(!video.muted));
    };
    element.addEventListener("click", (e) => {
      const button = e.target instanceof Element && e.target.closest(".dailies-unmute");
      const video = element.querySelector("video");
      if (!button || !video) return;
      video.muted = !video.muted;
      if (!video.muted) video.play().catch(() => {});
      label(video, button);
    });
    // Media events do not bubble: listen while they pass down to the video. The page may keep the
    // same <video> for the next generation and only change its src: each new video starts muted.
    element.addEventListener("loadstart", (e) => (e.target.muted = true), true);
    element.addEventListener(
      "volumechange",
      () => {
        const video = element.querySelector("video");
        const button = element.querySelector(".dailies-unmute");
        if (video && button) label(video, button);
      },
      true,
    );
    const still = () => {
      if (!matchMedia("(prefers-reduced-motion: reduce)").matches) return;
      for (const video of element.querySelectorAll("video[autoplay]")) {
        video.autoplay = false;
        video.pause();
      }
    };
    new MutationObserver(still).observe(element, { childList: true, subtree: true });
    still();
  };

  // The share links: copies the share page's absolute address, or the recipe (the clipboard
  // wants a user's click, which this is).
  dailies.copyButtons = (element) => {
    element.addEventListener("click", (e) => {
      const button = e.target instanceof Element && e.target.closest("[data-copy-link], [data-copy-text]");
      if (!button) return;
      const link = button.dataset.copyLink;
      navigator.clipboard
        ?.writeText(link ? new URL(link, location.href).href : button.dataset.copyText)
        .then(
          () => {
            button.textContent = "Copied";
          },
          () => {
            button.textContent = "Copy failed";
          },
        );
    });
  };
})();
