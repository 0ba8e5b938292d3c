#version 330 core
// The still photo behind the mesh: it shows where the mesh's border pulls inward.
uniform sampler2D image;
in vec2 uv;
out vec4 colour;

void main() {
    colour = vec4(texture(image, uv).rgb, 1.0);
}
