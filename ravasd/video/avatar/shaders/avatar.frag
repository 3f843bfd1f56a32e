#version 330
// Soft, friendly lighting: key + fill + rim + ambient, a little specular; colours in linear space.
// Written for software rasterisers too: no pow() per pixel (squares and sqrt instead).
uniform vec4 u_color;
uniform sampler2D u_tex;
uniform bool u_has_tex;
uniform vec3 u_eye;
uniform float u_rough;
in vec3 v_nrm;
in vec3 v_world;
in vec2 v_uv;
in vec4 v_color;
out vec4 f_color;
void main() {
    vec4 base = u_color * v_color;
    if (u_has_tex) base *= texture(u_tex, v_uv);
    vec3 n = normalize(v_nrm);
    vec3 v = normalize(u_eye - v_world);
    float nv = dot(n, v);
    if (nv < 0.0) { n = -n; nv = -nv; }  // two-sided: thin parts seen from behind
    const vec3 key = vec3(-0.4, 0.6, 0.7) / 1.0100;   // normalised
    const vec3 fill = vec3(0.6, 0.1, 0.5) / 0.7874;
    float diff = max(dot(n, key), 0.0) * 0.75 + max(dot(n, fill), 0.0) * 0.25;
    float r1 = 1.0 - nv;
    float rim = r1 * r1 * r1 * 0.25;
    vec3 h = normalize(key + v);
    float s = max(dot(n, h), 0.0);
    s *= s; s *= s; s *= s; s *= s;  // ^16
    float spec = s * (1.0 - u_rough) * 0.5;
    vec3 c = base.rgb * (0.38 + 0.72 * diff) + vec3(rim + spec);
    f_color = vec4(sqrt(clamp(c, 0.0, 1.0)), base.a);  // ~sRGB encode (gamma 2)
}
