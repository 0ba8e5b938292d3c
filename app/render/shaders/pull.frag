#version 330 core
// Pull-push, pull step: sum 2x2 blocks of (premultiplied rgb, weight), cap the weight at 1.
uniform sampler2D finer;
uniform ivec2 finer_size;
out vec4 coarse;

void main() {
    ivec2 first = ivec2(gl_FragCoord.xy) * 2;
    vec4 sums = vec4(0.0);
    for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
            ivec2 texel = first + ivec2(dx, dy);
            if (texel.x < finer_size.x && texel.y < finer_size.y) sums += texelFetch(finer, texel, 0);
        }
    }
    coarse = sums / max(sums.a, 1.0);
}
