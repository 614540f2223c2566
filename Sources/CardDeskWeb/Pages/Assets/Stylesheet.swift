/// The pages' scripts and stylesheet, served from `/assets` (the CSP allows no inline script or style).
enum Assets {
    static let stylesheet = #"""
[hidden] { display: none !important; }
html { font-family: system-ui, "Segoe UI", Arial, sans-serif; font-size: 100%; color: #212b32; background: #f0f4f5; }
body { margin: 0; line-height: 1.5; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: #ffeb3b; color: #212b32; padding: .5rem; }
header { background: #005eb8; color: #fff; display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; padding: .5rem 1.5rem; }
header a, header a:visited { color: #fff; }
.brand { font-weight: 700; font-size: 1.2rem; margin: 0; }
nav { display: flex; gap: 1rem; align-items: center; }
nav .who { margin: 0; }
nav form { margin: 0; }
main { max-width: 50rem; margin: 1.5rem auto; background: #fff; padding: 1.5rem 2rem; }
footer { max-width: 50rem; margin: 0 auto 2rem; padding: 0 2rem; color: #4c6272; }
footer a { color: #005eb8; }
h1 { margin-top: 0; }
label, legend { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=password] { font-size: 1.2rem; padding: .4rem; width: 12rem; border: 2px solid #4c6272; }
input:focus, button:focus, a:focus { outline: 3px solid #ffeb3b; outline-offset: 1px; box-shadow: 0 0 0 5px #212b32; }
button, .button { display: inline-block; font-size: 1rem; font-weight: 600; padding: .5rem 1.2rem; margin: .5rem 0;
  background: #007f3b; color: #fff; border: 0; border-bottom: 3px solid #00401e; text-decoration: none; cursor: pointer; }
header button { background: #fff; color: #005eb8; border-bottom-color: #768692; padding: .25rem .8rem; }
fieldset { border: 0; padding: 0; margin: 0; }
.choice { margin: .4rem 0; }
.choice label { display: inline; font-weight: 400; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
caption { text-align: left; color: #4c6272; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #d8dde0; }
progress { width: 100%; height: 1.2rem; }
.problem { border-left: 8px solid #d5281b; background: #fff; padding: .5rem 1rem; margin: 1rem 0; }
.notice, .banner { border-left: 8px solid #005eb8; background: #eef7ff; padding: .5rem 1rem; margin: 1rem 0; }
.banner { border-left-color: #ffb81c; background: #fff9e5; }
.error { color: #b3170c; font-weight: 600; }
.success { color: #00401e; font-weight: 700; font-size: 1.2rem; border-left: 8px solid #007f3b; padding-left: .75rem; }
.compat .ok { color: #00401e; }
code { background: #f0f4f5; padding: 0 .2rem; }
dl.account, dl.contacts { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
"""#
}
