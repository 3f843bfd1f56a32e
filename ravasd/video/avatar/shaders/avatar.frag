#version 330
// Soft, friendly lighting: key + fill + rim + ambient, a little specular; colours in linear space.
uniform vec4 u_color;
uniform sampler2D u_tex;
uniform bool u_has_tex;
uniform vec3 u_eye;
uniform float u_rough;
in vec3 v_nrm;
in vec3 v_world;
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec4 base = u_color;
    if (u_has_tex) base *= texture(u_tex, v_uv);
    vec3 n = normalize(v_nrm);
    vec3 v = normalize(u_eye - v_world);
    if (dot(n, v) < 0.0) n = -n;  // two-sided: thin parts seen from behind
    vec3 key = normalize(vec3(-0.4, 0.6, 0.7));
    vec3 fill = normalize(vec3(0.6, 0.1, 0.5));
    float diff = max(dot(n, key), 0.0) * 0.75 + max(dot(n, fill), 0.0) * 0.25;
    float rim = pow(1.0 - max(dot(n, v), 0.0), 3.0) * 0.25;
    vec3 h = normalize(key + v);
    float spec = pow(max(dot(n, h), 0.0), mix(80.0, 8.0, u_rough)) * (1.0 - u_rough) * 0.5;
    vec3 c = base.rgb * (0.38 + 0.72 * diff) + vec3(rim + spec);
    f_color = vec4(pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)), base.a);
}
