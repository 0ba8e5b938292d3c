#version 330 core
// Each of the 4 pixels a point covers is one bilinear tap; additive blending sums
// (rgb * weight, weight) * tap weight over every point that lands on a pixel.
flat in vec4 carried;
flat in vec2 top_left;
flat in vec2 fraction;
out vec4 accumulated;

void main() {
    vec2 tap = gl_FragCoord.xy - 0.5 - top_left;  // (0 or 1, 0 or 1)
    vec2 tap_fractions = mix(1.0 - fraction, fraction, tap);
    accumulated = carried * (tap_fractions.x * tap_fractions.y);
}
