#version 330 core
// Pass 1 of the splat: the displacement of every pixel into an RG32F texture.
#include "spectral.glsl"
out vec2 flow;

void main() {
    flow = spectral_displacement(ivec2(gl_FragCoord.xy));
}
