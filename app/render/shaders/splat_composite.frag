#version 330 core
// Last pass: splatted colour where something landed, the pull-push fill in the holes.
#include "upsample.glsl"
uniform sampler2D normalized;      // RGBA32F (W, H): (rgb, 1) or (0, 0) for a hole
uniform sampler2D coarser_filled;  // the filled pyramid level 1
uniform ivec2 coarser_size;
uniform ivec2 image_size;
in vec2 uv;
out vec4 colour;

void main() {
    ivec2 texel = clamp(ivec2(floor(uv * vec2(image_size))), ivec2(0), image_size - 1);
    vec4 splatted = texelFetch(normalized, texel, 0);
    vec3 rgb = splatted.a > 0.0 ? splatted.rgb : upsampled(coarser_filled, coarser_size, texel).rgb;
    colour = vec4(rgb, 1.0);
}
