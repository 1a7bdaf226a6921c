// The detail player's sound (gr.HTML js_on_load: `element` holds the player, redrawn per
// generation). Players start muted, as browsers only autoplay muted video; a video with sound
// has an unmute button, kept in step with the player's own controls.
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
