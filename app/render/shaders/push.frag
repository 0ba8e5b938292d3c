#version 330 core
// Pull-push, push step: a level keeps its own colour in proportion to its weight and takes the
// rest from the filled coarser level; the coarsest level is just unpremultiplied.
#include "upsample.glsl"
uniform sampler2D level;           // this level's pull result (premultiplied rgb, weight)
uniform sampler2D coarser_filled;  // the filled level below
uniform ivec2 coarser_size;
uniform bool is_coarsest;
out vec4 filled;

void main() {
    ivec2 texel = ivec2(gl_FragCoord.xy);
    vec4 own = texelFetch(level, texel, 0);
    if (is_coarsest) {
        filled = vec4(own.rgb / max(own.a, 1e-12), 1.0);
    } else {
        filled = vec4(own.rgb + (1.0 - own.a) * upsampled(coarser_filled, coarser_size, texel).rgb, 1.0);
    }
}
