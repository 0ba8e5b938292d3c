#version 330 core
uniform sampler2D image;
in vec2 texcoord;
out vec4 colour;

void main() {
    colour = vec4(texture(image, texcoord).rgb, 1.0);
}
