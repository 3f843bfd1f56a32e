#version 330
uniform vec3 u_outline_color;
out vec4 f_color;
void main() {
    f_color = vec4(sqrt(clamp(u_outline_color, 0.0, 1.0)), 1.0);
}
