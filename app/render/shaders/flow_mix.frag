#version 330 core
// The flow loop's two passes mixed: forward * (1 - share) + backward * share (symmetric blending).
uniform sampler2D forward_frame;
uniform sampler2D backward_frame;
uniform float share;  // t / P: the backward pass's weight at frame t of a P-frame loop
in vec2 uv;
out vec4 colour;

void main() {
    colour = vec4(mix(texture(forward_frame, uv).rgb, texture(backward_frame, uv).rgb, share), 1.0);
}
