// One peer connection for one call, per the client guide: the desk offers, the app
// answers, candidates trickle both ways and are buffered until the remote
// description is set. A restart builds a new MediaLink; an old one is never reused.

export class MediaLink {
  constructor({ channel, callId, role, iceServers, getStream, remoteVideo, onState }) {
    this.channel = channel;
    this.callId = callId;
    this.role = role;
    this.remoteVideo = remoteVideo;
    this.onState = onState || (() => {});
    this.pending = [];
    this.closed = false;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.chain = this.setUp(getStream);
  }

  async setUp(getStream) {
    const pc = this.pc;
    pc.addEventListener("track", (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      if (this.remoteVideo.srcObject !== stream) this.remoteVideo.srcObject = stream;
    });
    pc.addEventListener("icecandidate", (event) => {
      if (this.closed) return;
      this.channel.send({
        type: "webrtc.ice",
        call_id: this.callId,
        candidate: event.candidate ? event.candidate.toJSON() : null,
      });
    });
    pc.addEventListener("connectionstatechange", () => {
      if (this.closed) return;
      const state = pc.connectionState;
      if (state === "connected" || state === "disconnected" || state === "failed") {
        this.channel.send({ type: "media.state", call_id: this.callId, state });
      }
      this.onState(state);
    });
    const stream = await getStream();
    if (this.closed) return;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    if (this.role === "offerer") {
      // Without a camera or microphone of our own, still receive the other side's.
      for (const kind of ["audio", "video"]) {
        if (!stream.getTracks().some((track) => track.kind === kind)) {
          pc.addTransceiver(kind, { direction: "recvonly" });
        }
      }
      await pc.setLocalDescription(await pc.createOffer());
      this.channel.send({ type: "webrtc.offer", call_id: this.callId, sdp: pc.localDescription.sdp });
    }
  }

  // Media messages are handled one at a time, in the order they came.
  handle(message) {
    this.chain = this.chain.then(() => this.apply(message)).catch((error) => {
      console.warn("media message failed", message.type, error);
    });
    return this.chain;
  }

  // True when an offer arrives for a connection that already has one: the offerer
  // restarted, so the answerer must start over with a new connection.
  isStaleFor(message) {
    return message.type === "webrtc.offer" && this.pc.remoteDescription !== null;
  }

  async apply(message) {
    if (this.closed || message.call_id !== this.callId) return;
    const pc = this.pc;
    if (message.type === "webrtc.offer" && this.role === "answerer") {
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      await this.flushCandidates();
      await pc.setLocalDescription(await pc.createAnswer());
      this.channel.send({ type: "webrtc.answer", call_id: this.callId, sdp: pc.localDescription.sdp });
    } else if (message.type === "webrtc.answer" && this.role === "offerer") {
      if (pc.signalingState !== "have-local-offer") return; // an answer to an older offer
      await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      await this.flushCandidates();
    } else if (message.type === "webrtc.ice") {
      if (!message.candidate || !message.candidate.candidate) return; // end of candidates
      if (!pc.remoteDescription) this.pending.push(message.candidate);
      else await pc.addIceCandidate(message.candidate);
    }
  }

  async flushCandidates() {
    const queued = this.pending.splice(0);
    for (const candidate of queued) await this.pc.addIceCandidate(candidate);
  }

  // Frames of remote video decoded so far (getStats inbound-rtp), for the status
  // line and for tests.
  async framesDecoded() {
    if (this.closed) return 0;
    const stats = await this.pc.getStats();
    let frames = 0;
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") frames += report.framesDecoded || 0;
    });
    return frames;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
  }
}

let cameraStream = null;

// The camera and microphone are opened once per page and reused by every link.
// Without a camera (or without permission) the call goes on with what there is: audio
// only, or nothing sent at all; the page says so through onMissing.
export async function localStream(video, onMissing) {
  if (!cameraStream) {
    const attempts = [{ audio: true, video: { width: 640, height: 480 } }, { audio: true }, { video: true }];
    for (const constraints of attempts) {
      try {
        cameraStream = await navigator.mediaDevices.getUserMedia(constraints);
        break;
      } catch (error) {
        console.warn("getUserMedia", JSON.stringify(constraints), error.name);
      }
    }
    if (!cameraStream) cameraStream = new MediaStream();
    if (onMissing && cameraStream.getVideoTracks().length === 0) onMissing();
  }
  if (video && video.srcObject !== cameraStream) video.srcObject = cameraStream;
  return cameraStream;
}
