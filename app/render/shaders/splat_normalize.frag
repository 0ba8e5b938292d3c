#version 330 core
// Pass 3: colour = sum(rgb * weight) / sum(weight); alpha 1 where something landed, 0 for a hole.
uniform sampler2D accumulation;  // RGBA32F
out vec4 normalized;

void main() {
    vec4 sums = texelFetch(accumulation, ivec2(gl_FragCoord.xy), 0);
    normalized = sums.a > 0.0 ? vec4(sums.rgb / sums.a, 1.0) : vec4(0.0);
}
